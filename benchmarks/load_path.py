"""Benchmark of the load path on a sandbox world of N records: every source, from the world's
dumped files and end to end from the sandbox servers, then a re-sync with no change and one
with about 1 % of the records changed.

The world is the sandbox's (WorldConfig.for_records(N)). Two modes load it, each into a fresh
warehouse, through sync_session and the load specs, readers and day partitions the source
assets use (the registry of sources, and costudy_pipelines/lib/loading/windows.py):

files    the world dumped to a folder (sandbox/dump.py) and read back the way a sync reads:
         API JSON lines parsed as the API clients parse a page (http.parse_json), each
         worksheet's values through the Sheets reader's row handling, the Elective exports through
         ElectiveReader, and the website, course and platform tables COPYed from their CSV
         files into scratch databases and read by the project's extractors. One full sync
         per source (per worksheet): the load path itself.
servers  end to end: the sandbox up (sandbox/stack.py: servers in their own process,
         databases seeded, Elective exports dropped), read by the project's clients
         (WhopClient, GhlClient, gspread through sheets_transport, ElectiveReader, the
         database extractors): dated sources one session per day partition, sheets and
         Elective as full syncs. The sandbox enforces no rate limit and the clients' own
         limits (Whop's documented 10 requests/s would make Whop alone take minutes) are
         lifted, unless --api-rate-limits documented: then the clients keep theirs and the
         Whop and GoHighLevel servers enforce their documented limits (429 past them).

Stages, per mode: `full` (empty warehouse), `no_change_resync` (must write 0 rows), then the
world advances one day with about 1 % of every source's records changed (change_rate 0.01,
no deletes, no renames or newcomers beyond the world's minimum; the files are dumped again
and the databases follow it, or the sandbox advances) and `one_percent_changed_resync`.

Every (stage, source) runs in a process of its own, so its peak RSS is its own; with
--baseline-records (default 100,000) the full syncs run at that size first, so "flat from
100k to N" can be read off. Prints one JSON line per stage and source (records, sessions,
seconds, rows/s, rows written/inserted/updated/unchanged, client CPU seconds, peak RSS, load
average; for servers also API requests and the sandbox servers' CPU seconds), a line of
totals per stage (source "all": seconds summed over the sources), and a summary against the
targets: the load path (files, full) >= 20,000 rows/s at N; the no-change re-sync writes 0
rows in at most half the full sync's time; peak RSS <= 1 GB, and flat: the full sync's peak
at N within 1.25 x its peak at the baseline size; with both modes, `servers_to_files`: the
end-to-end full sync's rows/s against the files' (target >= 0.7). With --api-rate-limits
documented, each Whop and GoHighLevel line also says how close its extract came to the fastest
the API's limit allows: records_floor_ratio (records / (page size x allowed rate), the floor as
issue 15 defines it) and requests_floor_ratio (the requests made, at the allowed rate), i.e.
requests_per_s against allowed_requests_per_s, and the 429s the client met.

    .venv/bin/python benchmarks/load_path.py --records 100000 \\
        --server-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/load_path.py --embedded      # the project's embedded server
    .venv/bin/python benchmarks/load_path.py --modes files --baseline-records 0

Scratch databases are created on the server and dropped afterwards; the sandbox runs in a
temporary COSTUDY_HOME and is stopped at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import Any

import _checkout  # noqa: F401  (the checkout on sys.path: the tests' helpers)
import httpx
import psutil
import psycopg
from bench_server import (
    add_server_options,
    benchmark_server,
    cpu_seconds,
    peak_rss_mb,
    scratch_database,
)
from psycopg import sql

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.clients.databases import extract_pages
from costudy_pipelines.lib.clients.http import ApiCounters, RateLimit, RateLimiter, parse_json
from costudy_pipelines.lib.loading import (
    LoadOptions,
    LoadSpec,
    SyncReport,
    connector,
    sync_session,
)
from costudy_pipelines.lib.loading.windows import Extract, source_windows, sync_windows, utc_days
from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sandbox import stack
from costudy_pipelines.sandbox.changes import ChangeReport
from costudy_pipelines.sandbox.course_activity import COLLECTION as ACTIVITY_COLLECTION
from costudy_pipelines.sandbox.course_activity import activities, seed_course_users
from costudy_pipelines.sandbox.dump import DB_TABLES, dump_world, write_jsonl
from costudy_pipelines.sandbox.emulator import SandboxContext
from costudy_pipelines.sandbox.seed import apply_changes, schema_sql
from costudy_pipelines.sandbox.servers.gohighlevel import GoHighLevelServer
from costudy_pipelines.sandbox.servers.whop import WhopServer
from costudy_pipelines.sandbox.spreadsheets import spreadsheet_metas
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines.sources.course_activity.client import DEFAULT_BATCH_SIZE as ACTIVITY_BATCH
from costudy_pipelines.sources.course_activity.client import (
    ActivityReader,
    activity_extract,
    course_user_emails,
    join_course_users,
    jsonable,
)
from costudy_pipelines.sources.elective.client import ElectiveReader
from costudy_pipelines.sources.elective.spec import READER_COLUMNS, elective_records, elective_rows
from costudy_pipelines.sources.ghl.client import (
    GHL_RATE_LIMIT,
    MAX_SEARCH_PAGE_LIMIT,
    DayContacts,
    GhlClient,
)
from costudy_pipelines.sources.registry import Feed, RegisteredSource, load_registry
from costudy_pipelines.sources.sheets.client import SheetSource, SheetsReader, records_from_values
from costudy_pipelines.sources.sheets.spec import WorksheetConfig, sheet_records, worksheet_spec
from costudy_pipelines.sources.sheets.transport import gspread_client
from costudy_pipelines.sources.whop.client import MAX_PAGE_SIZE as WHOP_PAGE
from costudy_pipelines.sources.whop.client import (
    WHOP_RATE_LIMIT,
    WhopClient,
    member_email_index,
    with_member_email,
)

STAGES = ("full", "no_change_resync", "one_percent_changed_resync")
MODES = ("files", "servers")
REGISTRY = load_registry()
FEEDS: dict[str, tuple[RegisteredSource, Feed]] = {
    feed.asset: (source, feed) for source, feed in REGISTRY.feeds()
}
# Every registered source's feeds; the sheets as one job over the world's worksheets (the
# configured ones name the demo's spreadsheets, not the benchmark world's).
SHEETS_JOB = "sheet_rows"
SOURCES = tuple(
    dict.fromkeys(
        SHEETS_JOB if source.name == "sheets" else feed.asset for source, feed in REGISTRY.feeds()
    )
)
SOURCE_DATABASES = ("website", "course", "platform")  # the world's application databases
# A day that changes about 1 % of every source and nothing else (the world's minimum of new
# people and catalog rows still arrives: a handful of records).
ONE_PERCENT_DAY = {"change_rate": 0.01, "delete_rate": 0.0, "rename_rate": 0.0,
                   "newcomer_rate": 0.0}  # fmt: skip
# Far above anything a run needs: the clients' own throttles out of the way.
LIFTED = RateLimit(requests=10**9, per_seconds=1.0, burst=10**9)
# The sandbox servers whose documented limits --api-rate-limits documented switches on.
SANDBOX_API_LIMITS = {"whop": WhopServer, "ghl": GoHighLevelServer}
# The clients' documented limits and their page sizes, for the rate-limit floor.
RATE_FLOORS: dict[str, tuple[RateLimit, int]] = {
    "whop_payments": (WHOP_RATE_LIMIT, WHOP_PAGE),
    "whop_memberships": (WHOP_RATE_LIMIT, WHOP_PAGE),
    "whop_users": (WHOP_RATE_LIMIT, WHOP_PAGE),
    "ghl_contacts": (GHL_RATE_LIMIT, MAX_SEARCH_PAGE_LIMIT),
}
SHEET_ROLES = ("email", "name", "amount", "date")  # the columns SheetColumns knows
TARGET_ROWS_PER_S = 20_000
TARGET_RSS_MB = 1024
SERVERS_TO_FILES = 0.7  # end to end (servers, full) against the files' rows/s at N
FLAT_FACTOR = 1.25  # peak RSS at N within this factor of the peak at the baseline size


# -- one (mode, stage, source): runs in a process of its own ------------------------------------


@dataclass(frozen=True)
class Job:
    mode: str
    stage: str
    source: str
    warehouse_url: str
    database_urls: dict[str, str]  # website, course, platform
    sheets: list[dict[str, Any]]  # spreadsheets.json: the worksheets and their column roles
    chunk_size: int
    folder: str = ""  # files: the dump
    sandbox: dict[str, str] = field(default_factory=dict)  # servers: sandbox_environment
    last_day: str = ""  # servers: the last day partition
    lift_rate_limits: bool = True
    no_read_ahead: bool = False  # servers: each day read as it loads (before issue 27)


@dataclass
class Run:
    """What a job's syncs share: the session arguments, and the API counters to report."""

    job: Job
    counters: list[ApiCounters] = field(default_factory=list)

    def session(self) -> dict[str, Any]:
        return {
            "run_id": f"bench-{self.job.mode}-{self.job.stage}",
            "options": REGISTRY.load_options(chunk_size=self.job.chunk_size),
            "max_delete_share": REGISTRY.config.max_delete_share,
        }

    def connect(self) -> Callable[[], psycopg.Connection]:
        return connector(self.job.warehouse_url, source="--server-url")

    def full(self, spec, records) -> SyncReport:
        return sync_session(self.connect(), spec, records, full=True, **self.session())

    def limits(self) -> dict[str, Any]:
        return {"rate_limit": LIFTED} if self.job.lift_rate_limits else {}


def sheet_configs(listing: list[dict[str, Any]]) -> list[tuple[WorksheetConfig, int]]:
    """(the sources.toml entry a worksheet would have, its index) for every worksheet."""
    return [
        (
            WorksheetConfig(
                f"{sheet['spreadsheet_id']}_{tab['index']}",
                sheet["spreadsheet_id"],
                tab["title"],
                {role: tab["roles"][role] for role in SHEET_ROLES if role in tab["roles"]},
            ),
            tab["index"],
        )
        for sheet in listing
        for tab in sheet["worksheets"]
    ]


# Whop feeds whose records name a user but show no address: (user id field, skip if present)
WHOP_BY_MEMBER = {"whop_memberships": ("user_id", None), "whop_users": ("id", "email")}


def jsonl_records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as lines:
        for line in lines:
            yield parse_json(line)  # as the API clients parse a page


# -- how each registered source is read, per mode ------------------------------------------------
#
# READERS names, per source of the registry, how the benchmark reads it from the dumped files
# and from the sandbox servers; a source whose spec.py declares a Database (an application
# database's tables), or an API source (spec.py's Api: read through its client's
# open_feed, from its emulator), needs no entry. A registered source with none of them is
# refused before anything runs (missing_readers), so a new source cannot be left out silently.

SyncsOf = Callable[["Run", RegisteredSource, Feed], Iterator[SyncReport]]


@dataclass(frozen=True)
class SourceReader:
    files: SyncsOf
    servers: SyncsOf


def file_syncs(run: Run) -> Iterator[SyncReport]:
    """The job's source read from the dumped files: one full sync (per worksheet)."""
    if run.job.source == SHEETS_JOB:
        return sheet_file_syncs(run)
    source, feed = FEEDS[run.job.source]
    return reader_for(source).files(run, source, feed)


def server_syncs(run: Run) -> Iterator[SyncReport]:
    """The job's source read from the sandbox servers and databases as its asset reads it:
    dated sources one session per day partition, sheets and Elective as full syncs."""
    if run.job.source == SHEETS_JOB:
        return sheet_server_syncs(run)
    source, feed = FEEDS[run.job.source]
    return reader_for(source).servers(run, source, feed)


def by_day(
    run: Run, source: RegisteredSource, spec: LoadSpec, extract: Extract
) -> Iterator[SyncReport]:
    """One session per day partition of the source, as its asset's run over them."""
    config = REGISTRY.config
    days = utc_days(config.partitions_start, date.fromisoformat(run.job.last_day))
    windows = source_windows(days, config.first_day(source.entry), config.partitions_start)
    read_ahead = not run.job.no_read_ahead
    return sync_windows(
        run.connect(), spec, windows, extract, read_ahead=read_ahead, **run.session()
    )


def api_file_syncs(run: Run, source: RegisteredSource, feed: Feed) -> Iterator[SyncReport]:
    folder = Path(run.job.folder) / "api"
    records = jsonl_records(folder / f"{feed.asset}.jsonl")
    if feed.asset in WHOP_BY_MEMBER:  # their addresses are on member records, as the client reads
        emails = member_email_index(jsonl_records(folder / "whop_members.jsonl"))
        user_field, only_without = WHOP_BY_MEMBER[feed.asset]
        records = (with_member_email(r, emails, user_field, only_without) for r in records)
    yield run.full(feed.load, records)


def whop_server_syncs(run: Run, source: RegisteredSource, feed: Feed) -> Iterator[SyncReport]:
    env, resource = run.job.sandbox, feed.asset.removeprefix("whop_")
    with WhopClient(env["WHOP_API_KEY"], base_url=env["WHOP_API_URL"], **run.limits()) as whop:
        run.counters.append(whop.counters)
        yield from by_day(run, source, feed.load, lambda w: whop.pages(resource, w))


def ghl_server_syncs(run: Run, source: RegisteredSource, feed: Feed) -> Iterator[SyncReport]:
    env = run.job.sandbox
    clients = [
        GhlClient(env["GHL_TOKEN"], location, base_url=env["GHL_API_URL"], **run.limits())
        for location in env["GHL_LOCATION_IDS"].split(",")
    ]
    run.counters += [client.counters for client in clients]
    try:
        yield from by_day(run, source, feed.load, DayContacts(clients))
    finally:
        for client in clients:
            client.close()


def api_server_syncs(run: Run, source: RegisteredSource, feed: Feed) -> Iterator[SyncReport]:
    """Any API source, as its asset reads it: its reader opened with the settings the
    sandbox's emulator wrote into the variables its spec.py declares."""
    api = source.source.api
    assert api is not None
    settings = {name: run.job.sandbox[variable] for name, variable in api.environment.items()}
    reader = source.open_reader(settings, feed.asset)
    try:
        yield from by_day(run, source, feed.load, reader.day)
    finally:
        reader.close()


def dump_served(world: World, folder: Path) -> dict[str, int]:
    """What each API source without a dump of its own serves (its emulator, in this process,
    read whole through its reader), one JSON line per record under api/: its files."""
    counts: dict[str, int] = {}
    everything = TimeWindow(datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(1))
    for source in REGISTRY:
        if source.name in READERS or source.source.api is None:
            continue
        variables, token = source.source.api.environment, "benchmark-token"
        emulator = source.emulator()
        assert emulator.server is not None, f"{source.name}: its emulator has no server"
        server = emulator.server(world, 0, token).start()
        try:
            written = emulator.environment(
                SandboxContext(world, folder, {}, server.base_url, token)
            )
            settings = {name: written[variable] for name, variable in variables.items()}
            for feed in source.feeds:
                with closing(source.open_reader(settings, feed.asset)) as reader:
                    records = (record for page in reader.day(everything) for record in page)
                    path = folder / "api" / f"{feed.asset}.jsonl"
                    counts[feed.asset] = write_jsonl(records, path)
        finally:
            server.stop()
    return counts


def elective_file_syncs(run: Run, source: RegisteredSource, feed: Feed) -> Iterator[SyncReport]:
    return elective_syncs(run, Path(run.job.folder) / "elective")


def elective_server_syncs(run: Run, source: RegisteredSource, feed: Feed) -> Iterator[SyncReport]:
    return elective_syncs(run, Path(run.job.sandbox["ELECTIVE_DROP_DIR"]))


ACTIVITY_FILE = Path("mongo") / f"{ACTIVITY_COLLECTION}.jsonl"


def dump_activity(world: World, folder: Path, course_url: str) -> int:
    """The world's MongoDB activity as the reader returns it (jsonable documents), one JSON
    line each, and the course users its userIds name seeded into the course database."""
    seed_course_users(course_url, world, source="--server-url")
    documents = (jsonable(activity.document) for activity in activities(world))
    return write_jsonl(documents, folder / ACTIVITY_FILE)


def activity_file_syncs(run: Run, source: RegisteredSource, feed: Feed) -> Iterator[SyncReport]:
    """The dumped documents in the reader's pages, joined to their course users the way the
    asset's extract joins them (one users query per page), as one full sync."""
    engine = pg.make_engine(run.job.database_urls["course"], source="--server-url")
    try:
        documents = jsonl_records(Path(run.job.folder) / ACTIVITY_FILE)
        pages = iter(lambda: list(islice(documents, ACTIVITY_BATCH)), [])
        joined = join_course_users(pages, partial(course_user_emails, engine))
        yield run.full(feed.load, chain.from_iterable(joined))
    finally:
        engine.dispose()


def activity_server_syncs(run: Run, source: RegisteredSource, feed: Feed) -> Iterator[SyncReport]:
    """From the sandbox's MongoDB wire-protocol server, a day at a time, as the asset reads."""
    env = run.job.sandbox
    engine = pg.make_engine(run.job.database_urls["course"], source="--server-url")
    try:
        with ActivityReader(env["MONGO_URI"], env["MONGO_DB"]) as reader:
            extract = activity_extract(reader, partial(course_user_emails, engine))
            yield from by_day(run, source, feed.load, extract)
    finally:
        engine.dispose()


def database_file_syncs(run: Run, source: RegisteredSource, feed: Feed) -> Iterator[SyncReport]:
    database, extract = database_feed(source, feed)
    engine = pg.make_engine(run.job.database_urls[database], source="--server-url")
    try:
        yield run.full(feed.load, chain.from_iterable(extract_pages(engine, extract)))
    finally:
        engine.dispose()


def database_server_syncs(run: Run, source: RegisteredSource, feed: Feed) -> Iterator[SyncReport]:
    database, extract = database_feed(source, feed)
    engine = pg.make_engine(run.job.database_urls[database], source="--server-url")
    try:
        yield from by_day(
            run, source, feed.load, lambda window: extract_pages(engine, extract, window)
        )
    finally:
        engine.dispose()


def unread(mode: str) -> SyncsOf:
    def refuse(run: Run, source: RegisteredSource, feed: Feed) -> Iterator[SyncReport]:
        raise SystemExit(f"benchmarks/load_path.py has no {mode} reader for {source.name!r}")

    return refuse


READERS: dict[str, SourceReader] = {
    "whop": SourceReader(api_file_syncs, whop_server_syncs),
    "ghl": SourceReader(api_file_syncs, ghl_server_syncs),
    "elective": SourceReader(elective_file_syncs, elective_server_syncs),
    # the sheets run as one job over the world's worksheets (sheet_file_syncs and
    # sheet_server_syncs), never through their feed
    "sheets": SourceReader(unread("files"), unread("servers")),
    "course_activity": SourceReader(activity_file_syncs, activity_server_syncs),
}
DATABASE_READER = SourceReader(database_file_syncs, database_server_syncs)
API_READER = SourceReader(api_file_syncs, api_server_syncs)


def reader_for(source: RegisteredSource) -> SourceReader:
    if source.name in READERS:
        return READERS[source.name]
    if database_extracts(source) is not None:
        return DATABASE_READER
    if source.source.api is not None:
        return API_READER
    raise SystemExit(f"benchmarks/load_path.py has no reader for source {source.name!r}")


def missing_readers() -> list[str]:
    """The registered sources the benchmark could not read (it refuses to start with any)."""
    return [
        source.name
        for source in REGISTRY
        if source.name not in READERS
        and database_extracts(source) is None
        and source.source.api is None
    ]


def database_extracts(source: RegisteredSource) -> Mapping[str, Any] | None:
    database = source.source.database
    return None if database is None else database.extracts


def database_feed(source: RegisteredSource, feed: Feed) -> tuple[str, Any]:
    """(database, extract) of a feed read from an application database (its spec.py's
    Database)."""
    database = source.source.database
    if database is None:
        raise SystemExit(f"benchmarks/load_path.py has no reader for source {source.name!r}")
    return database.name, database.extracts[feed.asset]


def sheet_file_syncs(run: Run) -> Iterator[SyncReport]:
    job, folder = run.job, Path(run.job.folder)
    for sheet, index in sheet_configs(job.sheets):
        path = folder / "sheets" / sheet.spreadsheet_key / f"{index}.csv"
        with path.open(encoding="utf-8", newline="") as handle:
            values = list(csv.reader(handle))  # what get_all_values returns
        rows = records_from_values(SheetSource(sheet.spreadsheet_key, sheet.worksheet), values)
        yield run.full(worksheet_spec(sheet).for_source("sheets"), sheet_records([rows]))


def elective_syncs(run: Run, folder: Path) -> Iterator[SyncReport]:
    reader = ElectiveReader(folder, settle_seconds=0)
    scan = reader.scan()
    yield sync_session(
        run.connect(),
        elective_rows(READER_COLUMNS).for_source("elective"),
        elective_records(reader, scan),
        full=scan.complete,
        **run.session(),
    )


def sheet_server_syncs(run: Run) -> Iterator[SyncReport]:
    env = run.job.sandbox
    client = gspread_client(env["GOOGLE_SHEETS_API_URL"], token=env["GOOGLE_SHEETS_TOKEN"])
    reader = SheetsReader(client)
    if run.job.lift_rate_limits:
        reader.rate_limiter = RateLimiter(LIFTED)
    run.counters.append(reader.counters)
    for sheet, _ in sheet_configs(run.job.sheets):
        source = SheetSource(sheet.spreadsheet_key, sheet.worksheet)
        yield run.full(
            worksheet_spec(sheet).for_source("sheets"), sheet_records(reader.rows(source))
        )


def run_job(job: Job) -> dict[str, Any]:
    run = Run(job)
    syncs = file_syncs if job.mode == "files" else server_syncs
    started, cpu_started = time.perf_counter(), cpu_seconds()
    reports = list(syncs(run))
    seconds = time.perf_counter() - started
    records = sum(report.records_in for report in reports)
    result: dict[str, Any] = {
        "mode": job.mode,
        "stage": job.stage,
        "source": job.source,
        "records": records,
        "sessions": len(reports),
        "seconds": round(seconds, 2),
        "rows_per_s": round(records / seconds) if seconds else None,
        "rows_written": sum(report.written for report in reports),
        **{name: sum(getattr(r, name) for r in reports) for name in COUNTS},
        "status": sorted({report.status for report in reports}),
        "client_cpu_s": round(cpu_seconds() - cpu_started, 2),
        "peak_rss_mb": peak_rss_mb(),
        "load_average": round(os.getloadavg()[0], 2),
    }
    if run.counters:
        result["api_requests"] = sum(counter.requests for counter in run.counters)
        result["rate_limit_wait_s"] = round(sum(c.waited_s for c in run.counters), 2)
        result["rate_limited"] = sum(counter.rate_limited for counter in run.counters)
        if not job.lift_rate_limits and job.source in RATE_FLOORS:
            result |= rate_limit_floor(result, len(run.counters), *RATE_FLOORS[job.source])
    return result


def rate_limit_floor(line: dict[str, Any], clients: int, limit: RateLimit, page: int) -> dict:
    """How close the extract came to the fastest the API's limit allows (each client, e.g.
    a GoHighLevel location, has its own quota): the records' floor, records / (page size x
    allowed rate), as the issue defines it, and the requests' floor, the requests made at the
    allowed rate (a day partition asks at least once however few records it has)."""
    rate = clients * limit.requests / limit.per_seconds
    records_floor = line["records"] / (page * rate)
    requests_floor = line["api_requests"] / rate
    seconds = line["seconds"]
    return {
        "allowed_requests_per_s": rate,
        "records_floor_s": round(records_floor, 2),
        "records_floor_ratio": round(records_floor / seconds, 3) if seconds else None,
        "requests_floor_s": round(requests_floor, 2),
        "requests_floor_ratio": round(requests_floor / seconds, 3) if seconds else None,
        # the same ratio read the other way: the request rate achieved against the limit's
        "requests_per_s": round(line["api_requests"] / seconds, 2) if seconds else None,
        "rate_limited_429": line["rate_limited"],
    } | sandbox_rate(line)


def sandbox_rate(line: dict[str, Any]) -> dict[str, Any]:
    """The request rate against what the sandbox server enforces (its documented limit over
    its whole API: GoHighLevel's locations share it there, the client counts one each)."""
    service = "whop" if line["source"].startswith("whop_") else "ghl"
    limit = SANDBOX_API_LIMITS[service].documented_rate_limit
    allowed = limit.max_requests / limit.window_seconds
    rate = line["api_requests"] / line["seconds"] if line["seconds"] else 0.0
    return {
        "sandbox_allowed_requests_per_s": round(allowed, 2),
        "sandbox_rate_ratio": round(rate / allowed, 3),
    }


COUNTS = ("inserted", "updated", "unchanged", "soft_deleted", "rejected", "duplicates",
          "users_created", "users_updated")  # fmt: skip


# -- the modes: what each sets up, and how its world advances a day ----------------------------


def emit(line: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(line), flush=True)
    return line


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, round(time.perf_counter() - started, 2)


def change_counts(report: ChangeReport) -> dict[str, int]:
    changes = report.sources.values()
    return {
        "added": sum(len(c.added) for c in changes),
        "changed": sum(len(c.changed) for c in changes),
        "deleted": sum(len(c.deleted) for c in changes),
    }


class Mode:
    """A mode's databases (warehouse, website, course, platform), made on entry, dropped at
    the end; subclasses load the world into them and advance it."""

    name = ""

    def __init__(self, config: WorldConfig, server_url: str, scratch: Path, args) -> None:
        self.config = config
        self.world = World(config)
        self.server_url = server_url
        self.scratch = scratch
        self.args = args
        self.cleanup = ExitStack()
        self.urls: dict[str, str] = {}

    def __enter__(self) -> Mode:
        for database in ("warehouse", *SOURCE_DATABASES):
            prefix = f"bench_{self.name}_{database}"
            self.urls[database] = self.cleanup.enter_context(
                scratch_database(self.server_url, prefix)
            )
        apply_pending(self.urls["warehouse"], PROJECT_ROOT / "sql" / "warehouse")
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup.close()

    def job(self, stage: str, source: str) -> Job:
        return Job(
            self.name,
            stage,
            source,
            self.urls["warehouse"],
            {database: self.urls[database] for database in SOURCE_DATABASES},
            [asdict(meta) for meta in spreadsheet_metas(self.world)],
            self.args.chunk_size,
            **self.job_fields(),
        )

    def job_fields(self) -> dict[str, Any]:
        return {}

    def advance(self) -> ChangeReport:
        raise NotImplementedError

    def server_cpu_s(self) -> float | None:
        return None


class FilesMode(Mode):
    name = "files"

    def __enter__(self) -> FilesMode:
        super().__enter__()
        self.folder = self.scratch / "dump"
        _, seconds = timed(lambda: dump_world(self.world, self.folder, fingerprint=False))
        emit({"stage": "dump_world", "mode": self.name, "seconds": seconds})
        counts, seconds = timed(self.copy_database_files)
        emit({"stage": "copy_db_files", "mode": self.name, "seconds": seconds, "rows": counts})
        documents, seconds = timed(self.dump_activity)
        emit({"stage": "dump_activity", "mode": self.name, "seconds": seconds,
              "documents": documents})  # fmt: skip
        served, seconds = timed(lambda: dump_served(self.world, self.folder))
        emit({"stage": "dump_served", "mode": self.name, "seconds": seconds, "records": served})
        return self

    def copy_database_files(self) -> dict[str, int]:
        """The dumped website, course and platform tables COPYed into their databases."""
        counts = {}
        apply_pending(self.urls["platform"], PROJECT_ROOT / "sql" / "platform")
        for database in SOURCE_DATABASES:
            with pg.connect(self.urls[database], source="--server-url") as conn:
                if database != "platform":
                    conn.execute(schema_sql(database))
                for folder, _, table, columns in DB_TABLES:
                    if folder == database:
                        counts[table] = copy_csv(conn, table, columns, self.folder / folder)
        return counts

    def dump_activity(self) -> int:
        """MongoDB's documents are no part of the world's dump (it has no files for them)."""
        return dump_activity(self.world, self.folder, self.urls["course"])

    def advance(self) -> ChangeReport:
        report = self.world.advance_day()
        dump_world(self.world, self.folder, fingerprint=False)
        for database in SOURCE_DATABASES:
            apply_changes(self.urls[database], self.world, report, database, source="--server-url")
        self.dump_activity()
        dump_served(self.world, self.folder)
        return report

    def job_fields(self) -> dict[str, Any]:
        return {"folder": str(self.folder)}


def copy_csv(conn: psycopg.Connection, table: str, columns: tuple[str, ...], folder: Path) -> int:
    statement = sql.SQL("copy {} ({}) from stdin with (format csv, header true)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cursor, (folder / f"{table}.csv").open("rb") as source:
        with cursor.copy(statement) as copy:
            while block := source.read(1 << 20):
                copy.write(block)
        return cursor.rowcount


class ServersMode(Mode):
    name = "servers"

    def __enter__(self) -> ServersMode:
        super().__enter__()
        urls = self.database_urls()
        self.cleanup.callback(stack.down)
        self.state, seconds = timed(lambda: stack.up(self.config, database_urls=urls))
        emit({"stage": "sandbox_up", "mode": self.name, "seconds": seconds})
        self.set_api_limits()
        return self

    def database_urls(self) -> dict[str, str]:
        return {f"{database.upper()}_DB_URL": self.urls[database] for database in SOURCE_DATABASES}

    def set_api_limits(self) -> None:
        """The sandbox's API limits, per --api-rate-limits: `documented` switches on each API
        server's documented limit (it answers 429 past it, as the real API does); `lifted`:
        GoHighLevel reports its limit in headers and the client pauses near it, so the
        sandbox reports (and enforces) a limit far above the run."""
        if self.args.api_rate_limits == "documented":
            for service, server in SANDBOX_API_LIMITS.items():
                limit = asdict(server.documented_rate_limit)
                httpx.put(
                    f"{self.state.base_url(service)}/_sandbox/faults", json={"rate_limit": limit}
                ).raise_for_status()
            return
        limit = {"max_requests": 10**9, "window_seconds": 10.0}
        httpx.put(
            f"{self.state.base_url('ghl')}/_sandbox/faults", json={"rate_limit": limit}
        ).raise_for_status()

    def advance(self) -> ChangeReport:
        report = stack.advance_day(database_urls=self.database_urls())
        self.state = stack.read_state()
        self.set_api_limits()
        return report

    def job_fields(self) -> dict[str, Any]:
        last = self.config.start + timedelta(days=self.config.days + self.state.day - 1)
        return {
            "sandbox": stack.sandbox_environment(self.state),
            "last_day": last.isoformat(),
            "lift_rate_limits": self.args.api_rate_limits == "lifted",
            "no_read_ahead": self.args.no_read_ahead,
        }

    def server_cpu_s(self) -> float | None:
        times = psutil.Process(self.state.pid).cpu_times()
        return times.user + times.system


MODE_CLASSES = {"files": FilesMode, "servers": ServersMode}


def run_in_child(job: Job) -> dict[str, Any]:
    """The job in a new Python process (its peak RSS its own); its result line."""
    done = subprocess.run(
        [sys.executable, __file__, "--job"],
        input=json.dumps(asdict(job)),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{job.mode} {job.stage} {job.source} failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_world(records: int, args, server_url: str, stages: tuple[str, ...]) -> list[dict]:
    config = WorldConfig.for_records(records, seed=args.seed, **ONE_PERCENT_DAY)
    world = World(config)
    emit(
        {
            "stage": "world",
            "records": records,
            "people": config.people,
            "world_records": sum(world.count(source) for source in world.sources),
        }
    )
    results = []
    for mode in args.modes:
        with (
            tempfile.TemporaryDirectory(prefix=f"bench-{mode}-") as scratch,
            MODE_CLASSES[mode](config, server_url, Path(scratch), args) as setup,
        ):
            for stage in stages:
                if stage == "one_percent_changed_resync":
                    report, seconds = timed(setup.advance)
                    emit({"stage": "advance_day", "mode": mode, "seconds": seconds,
                          **change_counts(report)})  # fmt: skip
                lines = []
                for source in args.sources:
                    server_before = setup.server_cpu_s()
                    line = run_in_child(setup.job(stage, source))
                    if server_before is not None:
                        line["server_cpu_s"] = round(setup.server_cpu_s() - server_before, 2)
                    lines.append(emit({"world_records": records, **line}))
                results.append(emit(totals(records, mode, stage, lines)))
    return results


def totals(records: int, mode: str, stage: str, lines: list[dict]) -> dict[str, Any]:
    def total(name: str) -> Any:
        return sum(line.get(name) or 0 for line in lines)

    seconds = total("seconds")
    return {
        "world_records": records,
        "mode": mode,
        "stage": stage,
        "source": "all",
        "records": total("records"),
        "sessions": total("sessions"),
        "seconds": round(seconds, 2),
        "rows_per_s": round(total("records") / seconds) if seconds else None,
        "rows_written": total("rows_written"),
        **{name: total(name) for name in COUNTS},
        "client_cpu_s": round(total("client_cpu_s"), 2),
        "peak_rss_mb": max(line["peak_rss_mb"] for line in lines),
        "peak_rss_mb_by_source": {line["source"]: line["peak_rss_mb"] for line in lines},
    }


def summary(args, results: list[dict]) -> dict[str, Any]:
    """The targets, read off the stage totals: per mode the full sync's throughput, what the
    re-syncs wrote and how long they took against it, and the peak RSS at N (against the
    baseline size's, for flatness)."""
    at_n = {(r["mode"], r["stage"]): r for r in results if r["world_records"] == args.records}
    base = {r["mode"]: r for r in results if r["world_records"] == args.baseline_records}
    line: dict[str, Any] = {"stage": "summary", "records": args.records}
    for mode in args.modes:
        full = at_n[mode, "full"]
        entry: dict[str, Any] = {
            "records": full["records"],
            "seconds": full["seconds"],
            "rows_per_s": full["rows_per_s"],
        }
        if mode == "files":  # the load path itself
            entry["target_rows_per_s"] = TARGET_ROWS_PER_S
            entry["target_met"] = full["rows_per_s"] >= TARGET_ROWS_PER_S
        for stage in STAGES[1:]:
            if (mode, stage) not in at_n:  # --stages left it out
                continue
            resync = at_n[mode, stage]
            share = round(resync["seconds"] / full["seconds"], 3)
            entry[stage] = {"rows_written": resync["rows_written"], "seconds": resync["seconds"],
                            "share_of_full_time": share}  # fmt: skip
        if "no_change_resync" in entry:
            entry["no_change_resync"]["target_met"] = (
                entry["no_change_resync"]["rows_written"] == 0
                and entry["no_change_resync"]["share_of_full_time"] <= 0.5
            )
        peak = max(at_n[mode, stage]["peak_rss_mb"] for stage in args.stages)
        entry["peak_rss_mb"] = {"max": peak, "limit": TARGET_RSS_MB, "met": peak <= TARGET_RSS_MB}
        if mode in base:
            before, after = base[mode]["peak_rss_mb"], full["peak_rss_mb"]
            entry["peak_rss_mb"]["full_sync"] = {str(args.baseline_records): before,
                                                 str(args.records): after}  # fmt: skip
            entry["peak_rss_mb"]["flat"] = after <= FLAT_FACTOR * before
        line["load_path" if mode == "files" else "end_to_end"] = entry
    if {"files", "servers"} <= set(args.modes):  # end to end against the load path itself
        ratio = at_n["servers", "full"]["rows_per_s"] / at_n["files", "full"]["rows_per_s"]
        line["servers_to_files"] = {"ratio": round(ratio, 3), "target": SERVERS_TO_FILES,
                                    "met": ratio >= SERVERS_TO_FILES}  # fmt: skip
    line["load_average"] = [round(value, 2) for value in os.getloadavg()]
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--baseline-records", type=int, default=100_000, help="0: none")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modes", type=lambda text: text.split(","), default=list(MODES))
    parser.add_argument(
        "--sources",
        type=lambda text: text.split(","),
        default=list(SOURCES),
        help="comma-separated feeds (sheet_rows for the sheets); default all",
    )
    parser.add_argument(
        "--stages",
        type=lambda text: text.split(","),
        default=list(STAGES),
        help="comma-separated, in order; `full` is always first (default: all three)",
    )
    parser.add_argument("--api-rate-limits", choices=("lifted", "documented"), default="lifted")
    parser.add_argument("--chunk-size", type=int, default=LoadOptions().chunk_size)
    parser.add_argument(
        "--no-read-ahead", action="store_true", help="servers: read each day as it loads"
    )
    parser.add_argument("--job", action="store_true", help=argparse.SUPPRESS)
    add_server_options(parser)
    args = parser.parse_args()
    if unknown := set(args.modes) - set(MODES):
        parser.error(f"unknown mode(s) {sorted(unknown)}: choose from {MODES}")
    if unknown := set(args.sources) - set(SOURCES):
        parser.error(f"unknown source(s) {sorted(unknown)}: choose from {SOURCES}")
    if unknown := set(args.stages) - set(STAGES):
        parser.error(f"unknown stage(s) {sorted(unknown)}: choose from {STAGES}")
    args.stages = [stage for stage in STAGES if stage in args.stages or stage == "full"]
    if args.job:
        print(json.dumps(run_job(Job(**json.loads(sys.stdin.read())))))
        return
    if missing := missing_readers():
        parser.error(f"no reader for registered source(s) {missing}: add them to READERS")
    with benchmark_server(args) as server_url, tempfile.TemporaryDirectory() as home:
        # The sandbox's state, files and env block stay out of the project's own.
        os.environ["COSTUDY_HOME"] = home
        os.environ["COSTUDY_ENV_FILE"] = str(Path(home) / ".env")
        results = []
        if 0 < args.baseline_records < args.records:
            results += run_world(args.baseline_records, args, server_url, ("full",))
        results += run_world(args.records, args, server_url, tuple(args.stages))
        emit(summary(args, results))


if __name__ == "__main__":
    main()
