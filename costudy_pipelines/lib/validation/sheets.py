"""Rows of a configured Google Sheet (gspread get_all_records: header → value, numericised)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import quote

from costudy_pipelines.lib.validation.mapped import (
    DEFAULT_DATE_FORMATS,
    MappedModel,
    MappedValidator,
)
from costudy_pipelines.lib.validation.records import Column
from costudy_pipelines.lib.validation.types import CellAmount, CellText, join_name


@dataclass(frozen=True)
class SheetColumns:
    """Which header holds which field. None = the sheet has no such column."""

    email: str = "Email"
    name: str | None = "Name"
    first_name: str | None = None
    last_name: str | None = None
    amount: str | None = "Amount"
    date: str | None = "Date"
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS


class SheetRow(MappedModel):
    COLUMNS: ClassVar = (
        Column("amount", "numeric"),
        Column("occurred_at", "timestamptz"),
        Column("source_url", "text"),
    )

    email: CellText = None
    name: CellText = None
    first_name: CellText = None
    last_name: CellText = None
    amount: CellAmount = None
    source_url: CellText = None

    @property
    def email_value(self) -> str | None:
        return self.email

    @property
    def display_name(self) -> str | None:
        return self.name or join_name(self.first_name, self.last_name)


def sheet_url(spreadsheet_id: str, worksheet: str) -> str:
    return (
        f"https://docs.google.com/spreadsheets/d/{quote(spreadsheet_id, safe='')}/edit"
        f"#range={quote(worksheet, safe='')}"
    )


def sheet_row_validator(
    spreadsheet_id: str, worksheet: str, columns: SheetColumns | None = None
) -> MappedValidator:
    columns = columns or SheetColumns()
    headers = {
        field: (header,)
        for field, header in (
            ("email", columns.email),
            ("name", columns.name),
            ("first_name", columns.first_name),
            ("last_name", columns.last_name),
            ("amount", columns.amount),
            ("occurred_at", columns.date),
        )
        if header
    }
    return MappedValidator(
        SheetRow,
        headers,
        constants={"source_url": sheet_url(spreadsheet_id, worksheet)},
        date_formats=columns.date_formats,
        mapping_hint="SheetColumns.email",
    )
