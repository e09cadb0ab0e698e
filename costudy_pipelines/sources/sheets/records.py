"""Rows of a configured Google Sheet (header → cell text as the sheet shows it).

Dates may be ISO-8601, a configured format, or a serial number (a date cell formatted as a
number shows 43831 for 2020-01-01); without an offset they are the spreadsheet's wall time,
in its `timeZone` (read with the sheet's metadata: `set_time_zone`), not UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

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
    join_name,
    source_schema,
)


@dataclass(frozen=True)
class SheetColumns:
    """Which header holds which field. None = the sheet has no such column."""

    email: str = "Email"
    name: str | None = "Name"
    first_name: str | None = None
    last_name: str | None = None
    amount: str | None = "Amount"
    currency: str | None = "Currency"  # else the symbol typed in the amount, else dollars
    date: str | None = "Date"
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS


@source_schema
class SheetRowSchema(TypedDict, total=False):
    email: CellText
    name: CellText
    first_name: CellText
    last_name: CellText
    amount: CellText  # parsed with its currency symbol in build
    currency: CellText
    occurred_at: HumanTime
    source_url: str


def sheet_url(spreadsheet_id: str, worksheet: str) -> str:
    return (
        f"https://docs.google.com/spreadsheets/d/{quote(spreadsheet_id, safe='')}/edit"
        f"#range={quote(worksheet, safe='')}"
    )


class SheetRowValidator(MappedValidator):
    schema = SheetRowSchema
    columns = (
        Column("amount", "numeric"),
        Column("currency", "text"),
        Column("occurred_at", "timestamptz"),
        Column("source_url", "text"),
    )

    def __init__(
        self,
        spreadsheet_id: str,
        worksheet: str,
        columns: SheetColumns | None = None,
        *,
        amount_bounds: AmountBounds = DEFAULT_AMOUNT_BOUNDS,
    ) -> None:
        columns = columns or SheetColumns()
        headers = {
            field: (header,)
            for field, header in (
                ("email", columns.email),
                ("name", columns.name),
                ("first_name", columns.first_name),
                ("last_name", columns.last_name),
                ("amount", columns.amount),
                ("currency", columns.currency),
                ("occurred_at", columns.date),
            )
            if header
        }
        super().__init__(
            headers,
            constants={"source_url": sheet_url(spreadsheet_id, worksheet)},
            date_formats=columns.date_formats,
            mapping_hint="SheetColumns.email",
            amount_bounds=amount_bounds,
        )

    def build(self, record: dict[str, Any]) -> ValidRecord:
        occurred = record.get("occurred_at")
        (amount,), currency = human_money(
            record, ("amount",), record.get("currency"), self.amount_bounds
        )
        values = (amount, currency, occurred, record.get("source_url"))
        name = record.get("name") or join_name(record.get("first_name"), record.get("last_name"))
        return valid_record(None, record.get("email"), values, name=name, observed_at=occurred)
