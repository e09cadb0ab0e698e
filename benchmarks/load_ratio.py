"""The load path against a bare COPY + upsert of the same records, in one run: the ratio.

Per world size N (--records, default 100k, 300k and 1M) two shapes are written to JSON-lines
files, exactly as the API returns them:

small_flat    GoHighLevel-like contacts of about ten flat fields (0.3 x N of them; three
              contacts share an email in ten)
large_nested  the world's (WorldConfig.for_records(N)) Whop payments and GoHighLevel
              contacts: nested API records of 1-2 KB

Each shape is then loaded twice, each time in a process of its own (its peak RSS its own)
into a fresh scratch database holding the warehouse's migrations:

project    sync_session with the source's LoadSpec, a full sync per file: validation,
           content hashes, provenance, rejects and sync_log, one transaction per file
reference  a bare load of its own: per chunk of --chunk-size records, key and email read off
           the record, its JSON serialised, COPY into a staging table, users upserted by
           email, rows (key, user, email, raw jsonb) upserted by key with ON CONFLICT, no
           validation; one transaction per file

Both read the file the same way (a line, then parse_json as the API clients parse a page);
`read` is that reading alone, the floor under both. Prints one JSON line per (N, shape, path)
with records, seconds, rows/s, client CPU seconds, peak RSS, the load average and what the
server did meanwhile (WAL written, checkpoints, autovacuum runs: what makes one run slower
than its repetition; the project's lines add the session's own timings), one line per
(N, shape) with the ratio of rows/s (project / reference), and a summary: the ratio at the
largest N against the target (>= 0.8 on both shapes) and the project's peak RSS at the
largest N over the smallest's (target <= 1.1).

    .venv/bin/python benchmarks/load_ratio.py                      # 100k, 300k, 1M
    .venv/bin/python benchmarks/load_ratio.py --records 100000 --repeat 3

With --repeat R each path runs R times per shape, alternating which goes first, and the
lines report the median rows/s (every run's is listed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import psutil
import psycopg
from bench_server import (
    add_server_options,
    benchmark_server,
    cpu_seconds,
    peak_rss_mb,
    scratch_database,
)

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.clients.http import parse_json
from costudy_pipelines.lib.loading import LoadOptions, SyncReport, sync_session
from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sandbox.dump import write_jsonl
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines.sources.registry import load_registry

SIZES = (100_000, 300_000, 1_000_000)
PATHS = ("project", "reference")
TARGET_RATIO = 0.8
FLAT_RSS_FACTOR = 1.1
FLAT_SHARE = 0.3  # small-flat records per world record
# shape -> the feeds (their files) it loads, in order
SHAPES: dict[str, tuple[str, ...]] = {
    "small_flat": ("flat_contacts",),
    "large_nested": ("whop_payments", "ghl_contacts"),
}
FEED_OF = {"flat_contacts": "ghl_contacts", "whop_payments": "whop_payments",
           "ghl_contacts": "ghl_contacts"}  # fmt: skip
# what the reference reads off a record: its key and its email
EMAIL_FIELD = {"ghl_contacts": "email", "whop_payments": "customer_email"}
REFERENCE_SCHEMA = (
    "create table if not exists ref_users (id uuid primary key default gen_random_uuid(),"
    " email text not null unique, created_at timestamptz not null default now())",
    "create table {table} (key text primary key, user_id uuid not null references ref_users,"
    " email text not null, raw jsonb not null, synced_at timestamptz not null default now())",
)
REFERENCE_STAGE = "create temp table ref_stage (key text, email text, raw bytea) on commit drop"
REFERENCE_USERS = (
    "insert into ref_users (email) select distinct email from ref_stage order by email"
    " on conflict (email) do nothing"
)
REFERENCE_ROWS = (
    "insert into {table} as t (key, user_id, email, raw)"
    " select s.key, u.id, s.email, convert_from(s.raw, 'utf8')::jsonb"
    " from ref_stage s join ref_users u on u.email = s.email"
    " on conflict (key) do update set user_id = excluded.user_id, email = excluded.email,"
    " raw = excluded.raw, synced_at = now()"
)


# -- the files ------------------------------------------------------------------------------


def flat_contacts(count: int) -> Iterator[dict[str, Any]]:
    """GoHighLevel-like contacts of a dozen flat fields; 3 in 10 share an email."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for index in range(count):
        person = index * 7 // 10
        added = (start + timedelta(seconds=37 * index)).isoformat().replace("+00:00", "Z")
        yield {
            "id": f"flat{index:010d}",
            "locationId": "loc_bench",
            "email": f"person.{person}@example.com",
            "firstName": f"First{person % 997}",
            "lastName": f"Last{person % 991}",
            "phone": f"+1555{index % 10_000_000:07d}",
            "tags": ["lead"] if index % 3 else [],
            "source": "web form",
            "dateAdded": added,
            "dateUpdated": added,
        }


def write_files(records: int, seed: int, folder: Path) -> dict[str, int]:
    world = World(WorldConfig.for_records(records, seed=seed))
    counts = {
        source: write_jsonl(world.records(source), folder / f"{source}.jsonl")
        for source in ("whop_payments", "ghl_contacts")
    }
    flat = round(FLAT_SHARE * records)
    counts["flat_contacts"] = write_jsonl(flat_contacts(flat), folder / "flat_contacts.jsonl")
    return counts


def jsonl_records(path: Path) -> Iterator[Any]:
    with path.open("rb") as lines:
        for line in lines:
            yield parse_json(line)  # as the API clients parse a page


# -- one (shape, path): runs in a process of its own ----------------------------------------


class BackendCpu:
    """CPU seconds of the server processes behind this job's connections (a server on this
    machine; None otherwise): each backend's CPU times are read every 50 ms until it exits,
    so a backend's last 50 ms may go uncounted."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.last: dict[int, float] = {}
        self.unreadable = False
        self.stop = threading.Event()
        self.poller = threading.Thread(target=self._poll, daemon=True)
        self.poller.start()

    def connect(self) -> psycopg.Connection:
        conn = pg.connect(self.url, source="--server-url")
        self.last.setdefault(conn.info.backend_pid, 0.0)
        return conn

    def _poll(self) -> None:
        while not self.stop.wait(0.05):
            for pid in list(self.last):
                try:
                    times = psutil.Process(pid).cpu_times()
                except psutil.NoSuchProcess:
                    continue
                except psutil.AccessDenied:
                    self.unreadable = True
                    continue
                self.last[pid] = times.user + times.system

    def seconds(self) -> float | None:
        self.stop.set()
        self.poller.join()
        return None if self.unreadable else round(sum(self.last.values()), 2)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    folder, url, path = Path(job["folder"]), job["url"], job["path"]
    options = LoadOptions(chunk_size=job["chunk_size"], chunk_bytes=job["chunk_bytes"])
    feeds = {feed.asset: feed for _, feed in load_registry().feeds()}
    backends = BackendCpu(url)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    records = 0
    timings: dict[str, float] = {}
    for name in SHAPES[job["shape"]]:
        source = FEED_OF[name]
        rows = jsonl_records(folder / f"{name}.jsonl")
        if path == "project":
            report = sync_session(
                backends.connect,
                feeds[source].load,
                rows,
                full=True,
                run_id="bench-load-ratio",
                options=options,
            )
            records += report.records_in
            for key, value in _session_counts(report).items():
                timings[key] = round(timings.get(key, 0) + value, 3)
        elif path == "reference":
            table = f"ref_{source}"
            records += reference_load(backends.connect, table, EMAIL_FIELD[source], rows, options)
        else:
            records += sum(1 for _ in rows)
    seconds = time.perf_counter() - started
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "rows_per_s": round(records / seconds),
        "client_cpu_s": round(cpu_seconds() - cpu_started, 2),
        "server_cpu_s": backends.seconds(),
        "peak_rss_mb": peak_rss_mb(),
        **({"session": timings} if timings else {}),
    }


def _session_counts(report: SyncReport) -> dict[str, float]:
    counts = {"inserted": report.inserted, "rejected": report.rejected,
              "users_created": report.users_created}  # fmt: skip
    return counts | {key: value for key, value in report.timings.items() if key != "total_s"}


def reference_load(
    connect: Callable[[], psycopg.Connection],
    table: str,
    email_field: str,
    rows: Iterator[Any],
    options: LoadOptions,
) -> int:
    """The bare load: COPY a chunk into staging, upsert users by email, rows by key."""
    records = 0
    with connect() as conn:
        conn.execute("set temp_buffers = '256MB'")
        conn.commit()
        with conn.transaction():
            for statement in REFERENCE_SCHEMA:
                conn.execute(statement.format(table=table))
            conn.execute(REFERENCE_STAGE)
            with conn.cursor() as cur:
                while batch := list(islice(rows, options.chunk_size)):
                    records += len(batch)
                    chunk: dict[str, tuple[str, str, bytes]] = {}
                    for record in batch:
                        key, email = record.get("id"), record.get(email_field)
                        if key and email:
                            chunk[key] = (key, email, orjson.dumps(record))
                    cur.execute("truncate ref_stage")
                    with cur.copy("copy ref_stage from stdin (format binary)") as copy:
                        copy.set_types(["text", "text", "bytea"])
                        for row in chunk.values():
                            copy.write_row(row)
                    cur.execute(REFERENCE_USERS)
                    cur.execute(REFERENCE_ROWS.format(table=table))
    return records


# -- the run -------------------------------------------------------------------------------


def emit(line: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(line), flush=True)
    return line


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def run_in_child(job: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--job"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{job['shape']} {job['path']} failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


# What the server did besides the job's statements, the suspects of a run that is slower than
# its repetition: WAL written (full-page images after a checkpoint multiply it), checkpoints
# begun, autovacuum and autoanalyze runs on the scratch database's tables.
SERVER_WAL_AND_CHECKPOINTS = (
    "select pg_current_wal_lsn(), checkpoints_timed + checkpoints_req from pg_stat_bgwriter"
)
# PostgreSQL 17 moved the checkpoint counters to a view of their own
SERVER_WAL_AND_CHECKPOINTS_17 = (
    "select pg_current_wal_lsn(), num_timed + num_requested from pg_stat_checkpointer"
)
WAL_BYTES = "select pg_wal_lsn_diff(%s, %s)::bigint"
AUTOVACUUM_RUNS = (
    "select coalesce(sum(autovacuum_count), 0)::int, coalesce(sum(autoanalyze_count), 0)::int"
    " from pg_stat_user_tables"
)


def _one_row(conn: psycopg.Connection, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row


def server_activity(url: str, during: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `during`, and what the server did meanwhile (see SERVER_WAL_AND_CHECKPOINTS)."""
    with pg.connect(url, source="--server-url", autocommit=True) as conn:
        counters = SERVER_WAL_AND_CHECKPOINTS
        if conn.info.server_version >= 170000:
            counters = SERVER_WAL_AND_CHECKPOINTS_17
        lsn, checkpoints = _one_row(conn, counters)
        result = during()
        lsn_after, checkpoints_after = _one_row(conn, counters)
        (wal_bytes,) = _one_row(conn, WAL_BYTES, (lsn_after, lsn))
        vacuums, analyzes = _one_row(conn, AUTOVACUUM_RUNS)
    return result | {
        "server": {
            "wal_mb": round(wal_bytes / 2**20, 1),
            "checkpoints": checkpoints_after - checkpoints,
            "autovacuums": vacuums,
            "autoanalyzes": analyzes,
        }
    }


def measure(server_url: str, job: dict[str, Any]) -> dict[str, Any]:
    with scratch_database(server_url, f"bench_ratio_{job['path']}") as url:
        apply_pending(url, PROJECT_ROOT / "sql" / "warehouse")
        before = load_average()
        result = server_activity(url, lambda: run_in_child({**job, "url": url}))
    return result | {"load_average": [before, load_average()]}


def run_size(records: int, args, server_url: str) -> list[dict[str, Any]]:
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-ratio-") as scratch:
        folder = Path(scratch)
        counts = write_files(records, args.seed, folder)
        emit({"stage": "files", "world_records": records, "records": counts})
        for shape in args.shapes:
            job = {"folder": scratch, "shape": shape, "chunk_size": args.chunk_size,
                   "chunk_bytes": args.chunk_bytes}  # fmt: skip
            runs: dict[str, list[dict[str, Any]]] = {path: [] for path in PATHS}
            for repeat in range(args.repeat):
                order = PATHS if repeat % 2 == 0 else PATHS[::-1]
                for path in order:
                    runs[path].append(measure(server_url, {**job, "path": path}))
            read = measure(server_url, {**job, "path": "read"}) if args.read_floor else None
            by_path = {}
            for path in PATHS:
                rates = [run["rows_per_s"] for run in runs[path]]
                median = statistics.median(rates)
                best = min(runs[path], key=lambda run: abs(run["rows_per_s"] - median))
                line = {"world_records": records, "shape": shape, "path": path, **best}
                servers = [run["server"] for run in runs[path]]
                by_path[path] = emit(
                    line | {"rows_per_s": median, "runs_rows_per_s": rates, "runs_server": servers}
                )
            ratio = by_path["project"]["rows_per_s"] / by_path["reference"]["rows_per_s"]
            lines.append(
                emit(
                    {
                        "world_records": records,
                        "shape": shape,
                        "records": by_path["project"]["records"],
                        "project_rows_per_s": by_path["project"]["rows_per_s"],
                        "reference_rows_per_s": by_path["reference"]["rows_per_s"],
                        "ratio": round(ratio, 3),
                        "project_peak_rss_mb": by_path["project"]["peak_rss_mb"],
                        "reference_peak_rss_mb": by_path["reference"]["peak_rss_mb"],
                        "cpu_ms_per_1k_rows": {path: cpu_per_1k(by_path[path]) for path in PATHS},
                        **({"read_rows_per_s": read["rows_per_s"]} if read else {}),
                        "load_average": load_average(),
                    }
                )
            )
    return lines


def cpu_per_1k(line: dict[str, Any]) -> dict[str, float | None]:
    """Client and server CPU per 1,000 records: what a loaded machine's throughput follows."""
    server = line["server_cpu_s"]
    per = 1000 / line["records"]
    return {"client": round(line["client_cpu_s"] * 1000 * per, 1),
            "server": None if server is None else round(server * 1000 * per, 1)}  # fmt: skip


def summary(sizes: list[int], lines: list[dict[str, Any]]) -> dict[str, Any]:
    largest, smallest = max(sizes), min(sizes)
    out: dict[str, Any] = {"stage": "summary", "records": largest, "target_ratio": TARGET_RATIO}
    for shape in {line["shape"]: None for line in lines}:
        at = {line["world_records"]: line for line in lines if line["shape"] == shape}
        entry: dict[str, Any] = {
            "ratio_by_records": {str(n): at[n]["ratio"] for n in sorted(at)},
            "ratio_met": at[largest]["ratio"] >= TARGET_RATIO,
        }
        if largest != smallest:
            low, high = at[smallest]["project_peak_rss_mb"], at[largest]["project_peak_rss_mb"]
            entry["project_peak_rss_mb"] = {str(smallest): low, str(largest): high,
                                            "ratio": round(high / low, 3),
                                            "flat": high <= FLAT_RSS_FACTOR * low}  # fmt: skip
        out[shape] = entry
    return out | {"load_average": load_average()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records",
        type=lambda text: [int(float(n)) for n in text.split(",")],
        default=list(SIZES),
        help="world sizes, comma-separated (default 100000,300000,1000000)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--shapes", type=lambda text: text.split(","), default=list(SHAPES), help=",".join(SHAPES)
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=LoadOptions().chunk_size)
    parser.add_argument("--chunk-bytes", type=int, default=LoadOptions().chunk_bytes)
    parser.add_argument("--read-floor", action="store_true", help="also time reading alone")
    parser.add_argument("--job", action="store_true", help=argparse.SUPPRESS)
    add_server_options(parser)
    args = parser.parse_args()
    if unknown := set(args.shapes) - set(SHAPES):
        parser.error(f"unknown shape(s) {sorted(unknown)}: choose from {list(SHAPES)}")
    if args.job:
        print(json.dumps(run_job(json.loads(sys.stdin.read()))))
        return
    with benchmark_server(args) as server_url:
        lines = []
        for records in args.records:
            lines += run_size(records, args, server_url)
        emit(summary(args.records, lines))


if __name__ == "__main__":
    main()
