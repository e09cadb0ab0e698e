"""What each source asset reads and how it lands, without Dagster.

The assets in defs/sources/ wrap these in resources, partitions and metadata; the load-path
benchmark (benchmarks/load_path.py) calls them directly, so it measures what a
materialization runs:

- which SourceSpec each source lands through (WHOP_SPECS, GHL_SPEC, ELECTIVE_SPEC,
  sheet_spec, DATABASE_SOURCES);
- how its client's pages become records (ghl_pages, sheet_records, elective_records);
- how a run over day partitions becomes sessions (source_windows, sync_windows): one
  session, one transaction, per day, each soft-deleting what its day no longer holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import chain

import sqlalchemy as sa

from costudy_pipelines.lib.clients import databases
from costudy_pipelines.lib.clients.base import Page, Record, TimeWindow
from costudy_pipelines.lib.clients.elective import DropScan, ElectiveReader
from costudy_pipelines.lib.clients.ghl import GhlClient
from costudy_pipelines.lib.loading import (
    ConnectionSource,
    LoadOptions,
    SourceSpec,
    SyncReport,
    sources,
    sync_session,
)
from costudy_pipelines.lib.loading.spec import DEFAULT_OPTIONS
from costudy_pipelines.lib.source_config import SheetConfig, SourcesConfig
from costudy_pipelines.lib.validation import ElectiveColumns, SheetColumns

# A day's extract: the pages a source returns for one window.
Extract = Callable[[TimeWindow], Iterable[Page]]

# -- day partitions ---------------------------------------------------------------------------

# Where the first partition of a source starts reading: records dated before the source's
# first day, and records whose time the API cannot place (served at the epoch), would
# otherwise fall into no partition's window and be neither stored nor rejected.
BEGINNING_OF_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def source_windows(
    partitions: Iterable[tuple[str, TimeWindow]], config: SourcesConfig, family: str
) -> Iterator[tuple[str, TimeWindow]]:
    """(partition key, window) of every partition that `family` has data for; the partition
    of the source's first day reaches back to BEGINNING_OF_TIME."""
    first = config.first_day(family)
    first_partition = max(first, config.partitions_start)
    for key, window in partitions:
        if window.end.date() <= first:
            continue
        start = BEGINNING_OF_TIME if window.start.date() <= first_partition else window.start
        yield key, TimeWindow(start, window.end)


def utc_days(first: date, last: date) -> Iterator[tuple[str, TimeWindow]]:
    """(YYYY-MM-DD, window) of every UTC day from `first` to `last`, both included: the
    partitions of a run over those days."""
    for ordinal in range(first.toordinal(), last.toordinal() + 1):
        day = date.fromordinal(ordinal)
        yield day.isoformat(), TimeWindow.day(day)


def sync_windows(
    connect: ConnectionSource,
    spec: SourceSpec,
    windows: Iterable[tuple[str, TimeWindow]],
    extract: Extract,
    *,
    run_id: str | None = None,
    force_delete: bool = False,
    max_delete_share: float | None = None,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> Iterator[SyncReport]:
    """One session per (partition, window), the extract's pages streamed in; yields each
    report as its session commits. A failed session raises SyncFailed (later windows are
    not synced; earlier ones stay committed)."""
    for key, window in windows:
        yield sync_session(
            connect,
            spec,
            chain.from_iterable(extract(window)),
            partition=key,
            run_id=run_id,
            window=window,
            force_delete=force_delete,
            max_delete_share=max_delete_share,
            options=options,
        )


# -- the sources ------------------------------------------------------------------------------

WHOP_SPECS: Mapping[str, SourceSpec] = {
    "payments": sources.whop_payments(),
    "memberships": sources.whop_memberships(),
    "users": sources.whop_users(),
}

GHL_SPEC = sources.ghl_contacts()


def ghl_pages(clients: Sequence[GhlClient], window: TimeWindow) -> Iterator[Page]:
    """A day of contacts of every location, through search: a server-side dateAdded filter
    and 500 per page (the list endpoint has no filter)."""
    return chain.from_iterable(client.search_contacts(window) for client in clients)


def sheet_spec(sheet: SheetConfig) -> SourceSpec:
    return sources.sheet_rows(sheet.spreadsheet_key, sheet.worksheet, SheetColumns(**sheet.columns))


def content_only(row: Record) -> Record:
    """The cells alone: the row's position is not part of its identity (row hash)."""
    return {header: value for header, value in row.items() if not header.startswith("_")}


def sheet_records(pages: Iterable[Iterable[Record]]) -> Iterator[Record]:
    """The rows of a worksheet (SheetsReader.rows, or records_from_values of its values) as
    they are loaded: cells only."""
    return (content_only(row) for page in pages for row in page)


# The Elective reader maps every known layout onto these field names; the validator reads them.
ELECTIVE_READER_COLUMNS = ElectiveColumns(
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
ELECTIVE_POSITION_FIELDS = ("_file", "_line", "_layout")
ELECTIVE_SPEC = sources.elective_rows(ELECTIVE_READER_COLUMNS)


def elective_records(reader: ElectiveReader, scan: DropScan) -> Iterator[Record]:
    """Every row of the scanned exports without its position (file, line, layout): the same
    row in two overlapping exports is one row."""
    return (
        {key: value for key, value in row.items() if key not in ELECTIVE_POSITION_FIELDS}
        for page in reader.pages(scan)
        for row in page
    )


@dataclass(frozen=True)
class DatabaseSource:
    """A source read from an application database: its asset name, how it lands, what it
    reads, the database (website, platform, course) and its family for the partitions."""

    name: str
    spec: SourceSpec
    extract: databases.Extract
    database: str
    family: str


WEBSITE_EXTRACTS = {
    "vote": databases.WEBSITE_VOTES,
    "demo_request": databases.WEBSITE_DEMO_REQUESTS,
    "email_subscription": databases.WEBSITE_EMAIL_SUBSCRIPTIONS,
    "contact_submission": databases.WEBSITE_CONTACT_SUBMISSIONS,
}

DATABASE_SOURCES: tuple[DatabaseSource, ...] = (
    *(
        DatabaseSource(
            f"website_{extract.table}",
            sources.website_people(kind),
            extract,
            "website",
            "website",
        )
        for kind, extract in WEBSITE_EXTRACTS.items()
    ),
    DatabaseSource(
        "platform_users", sources.platform_users(), databases.PLATFORM_USERS, "platform", "platform"
    ),
    DatabaseSource(
        "course_orders", sources.course_orders(), databases.COURSE_ORDERS, "course", "course"
    ),
    DatabaseSource(
        "course_enrollments",
        sources.course_enrollments(),
        databases.COURSE_ENROLLMENTS,
        "course",
        "course",
    ),
)


def database_pages(source: DatabaseSource, engine: sa.Engine) -> Extract:
    """The day extract of a database source, read through `engine`."""
    return lambda window: databases.extract_pages(engine, source.extract, window)
