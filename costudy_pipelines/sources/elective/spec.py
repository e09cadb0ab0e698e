"""Elective: what it syncs and how (plain Python; defs.py turns it into Dagster objects)."""

from collections.abc import Iterator
from dataclasses import dataclass, field

from costudy_pipelines.lib.clients.base import Record
from costudy_pipelines.lib.loading import KeyKind, LoadSpec
from costudy_pipelines.lib.people.features import IDENTITY_FEATURES
from costudy_pipelines.sources.elective.client import (
    DEFAULT_EMAIL_HEADERS,
    DropScan,
    ElectiveReader,
)
from costudy_pipelines.sources.elective.records import ElectiveColumns, ElectiveRowValidator
from costudy_pipelines.sources.registry import (
    DAILY_FRESHNESS,
    Feed,
    NoCount,
    Schedule,
    Source,
)

NAME_RANK = 5

# The Elective reader maps every known layout onto these field names; the validator reads them.
READER_COLUMNS = ElectiveColumns(
    email=("email",),
    name=("name",),
    product=("product",),
    currency=("currency",),
    amount=("order_total",),
    net_amount=("net_amount",),
    fees=("fees",),
    status=("status",),
    order_type=("type",),
    purchased_at=("purchased_at",),
)
POSITION_FIELDS = ("_file", "_line", "_layout")


@dataclass(frozen=True)
class ElectiveSettings:
    """email_headers: the headers an export's email column may have (Elective documents none;
    an export whose email column is named otherwise, e.g. `E-mail`, is read once it is here).
    identity_headers: identity feature -> the header of an extra column holding it, for people
    matching (e.g. {birth_date = "Date of Birth", city = "Suburb"}): kept in the row's raw
    `_extra`, read by lib/people/features.py."""

    email_headers: list[str] = field(default_factory=lambda: list(DEFAULT_EMAIL_HEADERS))
    identity_headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        headers = self.email_headers
        if not isinstance(headers, list) or not all(isinstance(h, str) and h for h in headers):
            raise ValueError(f"email_headers: must be a list of header names, not {headers!r}")
        identity = self.identity_headers
        if not isinstance(identity, dict) or not all(
            isinstance(h, str) and h for h in identity.values()
        ):
            raise ValueError(f"identity_headers: must map features to headers, not {identity!r}")
        unknown = sorted(set(identity) - set(IDENTITY_FEATURES))
        if unknown:
            raise ValueError(
                f"identity_headers: unknown feature(s) {unknown}; known: {list(IDENTITY_FEATURES)}"
            )

    @property
    def identity(self) -> dict[str, tuple[str, ...]]:
        return {feature: ("_extra", header) for feature, header in self.identity_headers.items()}


def elective_rows(columns: ElectiveColumns | None = None) -> LoadSpec:
    """All Elective exports of the folder together: overlapping exports collapse by row hash."""
    return LoadSpec(
        "elective_rows",
        "elective_rows",
        ElectiveRowValidator(columns),
        key_kind=KeyKind.ROW_HASH,
    )


def content_only(row: Record) -> Record:
    """The row without its position (file, line, layout): the same row in two overlapping
    exports is one row."""
    return {key: value for key, value in row.items() if key not in POSITION_FIELDS}


def row_place(row: Record) -> str | None:
    """The row's identity at the source for its rejects: export file and line (see
    lib/loading/places.py)."""
    return f"{row['_file']} line {row['_line']}" if "_file" in row and "_line" in row else None


def elective_rows_read(reader: ElectiveReader, scan: DropScan) -> Iterator[Record]:
    """Every row of the scanned exports as read, with its position."""
    return (row for page in reader.pages(scan) for row in page)


def elective_records(reader: ElectiveReader, scan: DropScan) -> Iterator[Record]:
    """Every row of the scanned exports as loaded: without its position."""
    return (content_only(row) for row in elective_rows_read(reader, scan))


def feeds(settings: ElectiveSettings) -> tuple[Feed, ...]:
    return (
        Feed(
            elective_rows(READER_COLUMNS),
            NoCount("a full sync reads every export whole: what it read is the source"),
            "Every Elective export in the drop folder. Rows with no email (an export without "
            "an email column) are rejected with that reason, counted, and kept for replay.",
            identity=settings.identity,
        ),
    )


SOURCE = Source(
    name="elective",
    title="Elective",
    name_rank=NAME_RANK,
    schedule=Schedule.FULL,
    freshness=DAILY_FRESHNESS,
    owners=("team:data-platform",),
    feeds=feeds,
    settings=ElectiveSettings,
)
