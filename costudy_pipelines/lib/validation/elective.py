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
from typing import ClassVar

from costudy_pipelines.lib.validation.mapped import (
    DEFAULT_DATE_FORMATS,
    MappedModel,
    MappedValidator,
)
from costudy_pipelines.lib.validation.records import Column
from costudy_pipelines.lib.validation.types import CellAmount, CellText


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


class ElectiveRow(MappedModel):
    COLUMNS: ClassVar = (
        Column("product", "text"),
        Column("currency", "text"),
        Column("amount", "numeric"),
        Column("net_amount", "numeric"),
        Column("fees", "numeric"),
        Column("status", "text"),
        Column("order_type", "text"),
        Column("occurred_at", "timestamptz"),
    )

    email: CellText = None
    name: CellText = None
    product: CellText = None
    currency: CellText = None
    amount: CellAmount = None
    net_amount: CellAmount = None
    fees: CellAmount = None
    status: CellText = None
    order_type: CellText = None

    @property
    def email_value(self) -> str | None:
        return self.email

    @property
    def display_name(self) -> str | None:
        return self.name


def elective_row_validator(columns: ElectiveColumns | None = None) -> MappedValidator:
    columns = columns or ElectiveColumns()
    headers = {
        "email": columns.email,
        "name": columns.name,
        "product": columns.product,
        "currency": columns.currency,
        "amount": columns.amount,
        "net_amount": columns.net_amount,
        "fees": columns.fees,
        "status": columns.status,
        "order_type": columns.order_type,
        "occurred_at": columns.purchased_at,
    }
    return MappedValidator(
        ElectiveRow,
        headers,
        date_formats=columns.date_formats,
        mapping_hint="ElectiveColumns.email",
    )
