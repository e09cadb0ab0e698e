"""Rows of Elective CSV payment exports (Orders dashboard), both documented layouts.

Current layout: Purchase Date (UTC), Student Name, Product Purchased, Currency, Order Total,
Term (months), First Payment, Fees, Net Amount, Type, Status. Older layout: Purchase Date
(UTC), Customer, Checkout, Type, Term, Order Total, Fees, Net Amount, Status.

Neither documents an email column. Policy: the email is read from the first configured email
header the export has; a row without one (no such column, or an empty cell) is REJECTED with
the reason "cannot tie the row to a person", counted in the session, kept in sync_rejects, and
loaded by a replay once the mapping names the column (or the export gains one). Rows are never
attached to a guessed person by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from typing_extensions import TypedDict

from costudy_pipelines.lib.validation.mapped import (
    DEFAULT_DATE_FORMATS,
    HumanTime,
    MappedValidator,
)
from costudy_pipelines.lib.validation.records import Column, ValidRecord, valid_record
from costudy_pipelines.lib.validation.types import (
    DEFAULT_AMOUNT_BOUNDS,
    AmountBounds,
    CellText,
    human_money,
    source_schema,
)


@dataclass(frozen=True)
class ElectiveColumns:
    """Candidate headers per field, first found wins; covers both layouts by default."""

    email: tuple[str, ...] = ("Email", "Student Email", "Customer Email", "Email Address")
    name: tuple[str, ...] = ("Student Name", "Customer")
    product: tuple[str, ...] = ("Product Purchased", "Checkout")
    currency: tuple[str, ...] = ("Currency",)
    amount: tuple[str, ...] = ("Order Total",)
    net_amount: tuple[str, ...] = ("Net Amount",)
    fees: tuple[str, ...] = ("Fees",)
    status: tuple[str, ...] = ("Status",)
    order_type: tuple[str, ...] = ("Type",)
    purchased_at: tuple[str, ...] = ("Purchase Date (UTC)", "Purchase Date")
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS


@source_schema
class ElectiveRowSchema(TypedDict, total=False):
    email: CellText
    name: CellText
    product: CellText
    currency: CellText
    amount: CellText  # the amounts are parsed with their currency symbols in build
    net_amount: CellText
    fees: CellText
    status: CellText
    order_type: CellText
    occurred_at: HumanTime


TEXT_AND_AMOUNT_FIELDS = (
    "product",
    "currency",
    "amount",
    "net_amount",
    "fees",
    "status",
    "order_type",
)
AMOUNT_FIELDS = ("amount", "net_amount", "fees")


class ElectiveRowValidator(MappedValidator):
    schema = ElectiveRowSchema
    columns = (
        Column("product", "text"),
        Column("currency", "text"),
        Column("amount", "numeric"),
        Column("net_amount", "numeric"),
        Column("fees", "numeric"),
        Column("status", "text"),
        Column("order_type", "text"),
        Column("occurred_at", "timestamptz"),
    )

    def __init__(
        self,
        columns: ElectiveColumns | None = None,
        *,
        amount_bounds: AmountBounds = DEFAULT_AMOUNT_BOUNDS,
    ) -> None:
        columns = columns or ElectiveColumns()
        mapped = ("email", "name", *TEXT_AND_AMOUNT_FIELDS)
        headers = {field: getattr(columns, field) for field in mapped}
        headers["occurred_at"] = columns.purchased_at
        super().__init__(
            headers,
            date_formats=columns.date_formats,
            mapping_hint="ElectiveColumns.email",
            amount_bounds=amount_bounds,
        )

    def build(self, record: dict[str, Any]) -> ValidRecord:
        (amount, net_amount, fees), currency = human_money(
            record, AMOUNT_FIELDS, record.get("currency"), self.amount_bounds
        )
        values = (
            record.get("product"), currency, amount, net_amount, fees, record.get("status"),
            record.get("order_type"), record.get("occurred_at"),
        )  # fmt: skip
        return valid_record(
            None, record.get("email"), values, name=record.get("name"),
            observed_at=record.get("occurred_at"),
        )  # fmt: skip
