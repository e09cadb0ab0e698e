"""Google Sheets: what it syncs and how (plain Python; defs.py turns it into Dagster objects).

Each worksheet of `[sources.sheets] worksheets` is one feed (`sheet_<name>`), all landing in
sheet_rows, each in its own scope (spreadsheet + worksheet).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict

from costudy_pipelines.lib.clients.base import Record
from costudy_pipelines.lib.loading import KeyKind, LoadSpec
from costudy_pipelines.lib.people.features import IDENTITY_FEATURES
from costudy_pipelines.sources.config import NAME
from costudy_pipelines.sources.registry import (
    DAILY_FRESHNESS,
    Feed,
    NoCount,
    Schedule,
    Source,
)
from costudy_pipelines.sources.sheets.records import SheetColumns, SheetRowValidator

NAME_RANK = 3  # SPEC §3.2: after GoHighLevel and Whop
WORKSHEET_KEYS = frozenset({"name", "spreadsheet_key", "worksheet", "columns"})
VALIDATED_KEYS = frozenset(f.name for f in dataclasses.fields(SheetColumns)) - {"date_formats"}
# Columns only people matching reads (lib/people/features.py): phone, date of birth, ...
IDENTITY_KEYS = frozenset(IDENTITY_FEATURES) - {"name"}
COLUMN_KEYS = VALIDATED_KEYS | IDENTITY_KEYS


class ColumnHeaders(TypedDict, total=False):
    """The header of each SheetColumns field a worksheet names differently (COLUMN_KEYS)."""

    email: str
    name: str | None
    first_name: str | None
    last_name: str | None
    amount: str | None
    date: str | None
    phone: str
    username: str
    birth_date: str
    city: str
    postcode: str
    address: str


@dataclass(frozen=True)
class WorksheetConfig:
    name: str  # the asset is sheet_<name>
    spreadsheet_key: str
    worksheet: str
    columns: ColumnHeaders = field(default_factory=ColumnHeaders)  # field -> its header

    @property
    def validated(self) -> dict[str, Any]:
        """The columns the row's validation reads (SheetColumns)."""
        return {key: header for key, header in self.columns.items() if key in VALIDATED_KEYS}

    @property
    def identity(self) -> dict[str, tuple[str, ...]]:
        """Identity feature -> the header holding it (the row's raw JSON is keyed by header)."""
        return {
            key: (header,)
            for key, header in self.columns.items()
            if key in IDENTITY_KEYS and isinstance(header, str) and header
        }


def _worksheet(index: int, entry: Any) -> WorksheetConfig:
    where = f"worksheets[{index}]"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be a table")
    unknown = sorted(set(entry) - WORKSHEET_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(WORKSHEET_KEYS)}")
    missing = sorted({"name", "spreadsheet_key", "worksheet"} - set(entry))
    if missing:
        raise ValueError(f"{where}: missing {missing}")
    columns = entry.get("columns", {})
    bad = sorted(set(columns) - COLUMN_KEYS) if isinstance(columns, dict) else ["(not a table)"]
    if bad:
        raise ValueError(f"{where} columns: unknown field(s) {bad}; known: {sorted(COLUMN_KEYS)}")
    if not NAME.match(str(entry["name"])):
        raise ValueError(f"{where} name: {entry['name']!r} must be snake_case")
    return WorksheetConfig(**entry)


@dataclass(frozen=True)
class SheetsSettings:
    worksheets: list[Any] = field(default_factory=list)
    parsed: tuple[WorksheetConfig, ...] = field(init=False)

    def __post_init__(self) -> None:
        parsed = tuple(_worksheet(i, entry) for i, entry in enumerate(self.worksheets))
        names = [sheet.name for sheet in parsed]
        if len(set(names)) != len(names):
            raise ValueError(f"worksheets: two entries share a name ({sorted(names)})")
        object.__setattr__(self, "parsed", parsed)


def sheet_rows(
    spreadsheet_id: str, worksheet: str, columns: SheetColumns | None = None, feed: str = "sheet"
) -> LoadSpec:
    """One worksheet of one spreadsheet (the feed `feed`): its own scope of sheet_rows."""
    return LoadSpec(
        feed,
        "sheet_rows",
        SheetRowValidator(spreadsheet_id, worksheet, columns),
        key_kind=KeyKind.ROW_HASH,
        scope=MappingProxyType({"spreadsheet_id": spreadsheet_id, "worksheet": worksheet}),
    )


def worksheet_spec(sheet: WorksheetConfig) -> LoadSpec:
    return sheet_rows(
        sheet.spreadsheet_key,
        sheet.worksheet,
        SheetColumns(**sheet.validated),
        feed=f"sheet_{sheet.name}",
    )


def content_only(row: Record) -> Record:
    """The cells alone: the row's position is not part of its identity (row hash)."""
    return {header: value for header, value in row.items() if not header.startswith("_")}


def row_place(row: Record) -> str | None:
    """The row's identity at the source for its rejects: its row number (the worksheet is the
    feed's scope). See lib/loading/places.py."""
    return f"row {row['_row']}" if "_row" in row else None


def sheet_records(pages: Iterable[Iterable[Record]]) -> Iterator[Record]:
    """The rows of a worksheet (SheetsReader.rows, or records_from_values of its values) as
    they are loaded: cells only."""
    return (content_only(row) for page in pages for row in page)


def feeds(settings: SheetsSettings) -> tuple[Feed, ...]:
    return tuple(
        Feed(
            worksheet_spec(sheet),
            NoCount("a full sync reads the worksheet whole: what it read is the source"),
            f"Worksheet {sheet.worksheet!r} of spreadsheet {sheet.spreadsheet_key}, fully "
            "synced into sheet_rows (rows gone from the sheet are soft-deleted).",
            identity=sheet.identity,
        )
        for sheet in settings.parsed
    )


def worksheet_of(settings: SheetsSettings, asset: str) -> WorksheetConfig:
    return next(sheet for sheet in settings.parsed if f"sheet_{sheet.name}" == asset)


SOURCE = Source(
    name="sheets",
    title="Google Sheets",
    name_rank=NAME_RANK,
    schedule=Schedule.FULL,
    freshness=DAILY_FRESHNESS,
    owners=("team:data-platform",),
    feeds=feeds,
    settings=SheetsSettings,
)
