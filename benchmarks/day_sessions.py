"""Benchmark of what a day partition's sync session costs by itself: N empty days synced
through sync_windows, the path the dated source assets run (defs/_source_assets.sync_daily),
into a fresh warehouse. Each day is its own session and transaction with its sync_log row;
the day has no records, so what is measured is the session's own overhead (connections,
locks, staging tables, sync_log bookkeeping), not loading. With --records-per-day N (and
--feed ghl_contacts) each day brings N GoHighLevel-like flat contacts dated in it (3 in 10
sharing an address with another day's): a small day's whole load path, the per-session
cost of the servers mode of load_path.py.

Prints one JSON line: sessions, seconds, ms per session, client and server (the session's
backends) CPU per session, the database round trip measured beside it (`select 1`, ms) and
the load average, so a number taken on a busy machine can be
read against the machine's state. The target (issue 15): at most 5 ms per empty day.

    .venv/bin/python benchmarks/day_sessions.py --days 1000 \\
        --server-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from bench_server import add_server_options, benchmark_server, cpu_seconds, scratch_database
from load_ratio import BackendCpu

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.clients.base import Page, TimeWindow
from costudy_pipelines.lib.loading.windows import sync_windows, utc_days
from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sources.registry import load_registry

TARGET_MS = 5.0
FIRST_DAY = date(2024, 1, 1)


def no_pages(window: TimeWindow) -> list[Page]:
    return []


def flat_contacts(per_day: int) -> Callable[[TimeWindow], list[Page]]:
    """An extract of `per_day` flat contacts a day, dated within the day; 3 in 10 share an
    address with the same contact of the day before."""

    def extract(window: TimeWindow) -> list[Page]:
        day = window.end.toordinal()
        records: list[dict[str, Any]] = []
        for index in range(per_day):
            added = (window.end - timedelta(seconds=index + 1)).isoformat()
            person = f"{day - 1 if index % 10 < 3 else day}.{index}"
            records.append(
                {
                    "id": f"day{day}-{index}",
                    "locationId": "loc_bench",
                    "email": f"person.{person}@example.com",
                    "firstName": f"First{index}",
                    "lastName": f"Last{day % 991}",
                    "phone": f"+1555{index:07d}",
                    "tags": ["lead"] if index % 3 else [],
                    "source": "web form",
                    "dateAdded": added.replace("+00:00", "Z"),
                    "dateUpdated": added.replace("+00:00", "Z"),
                }
            )
        return [records]

    return extract


def round_trip_ms(url: str, samples: int = 200) -> float:
    """The median of `select 1` on one connection: the machine's latency floor right now."""
    with pg.connect(url, source="--server-url") as conn:
        timings = []
        for _ in range(samples):
            started = time.perf_counter()
            conn.execute("select 1").fetchone()
            timings.append(time.perf_counter() - started)
    return round(statistics.median(timings) * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1000)
    parser.add_argument("--feed", default="whop_payments", help="a dated feed of sources.toml")
    parser.add_argument(
        "--records-per-day", type=int, default=0, help="flat contacts a day (--feed ghl_contacts)"
    )
    add_server_options(parser)
    args = parser.parse_args()
    feeds = {feed.asset: feed for _, feed in load_registry().feeds()}
    spec = feeds[args.feed].load
    days = list(utc_days(FIRST_DAY, FIRST_DAY + timedelta(days=args.days - 1)))
    if args.records_per_day and args.feed != "ghl_contacts":
        parser.error("--records-per-day makes GoHighLevel contacts: use --feed ghl_contacts")
    extract = flat_contacts(args.records_per_day) if args.records_per_day else no_pages
    with benchmark_server(args) as server, scratch_database(server, "bench_sessions") as url:
        apply_pending(url, PROJECT_ROOT / "sql" / "warehouse")
        latency = round_trip_ms(url)
        backends = BackendCpu(url)
        started, cpu_started = time.perf_counter(), cpu_seconds()
        reports = list(sync_windows(backends.connect, spec, days, extract, run_id="b"))
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_started
        server_cpu = backends.seconds()
        with pg.connect(url, source="--server-url") as conn:
            row = conn.execute(
                "select count(*) filter (where status = 'SUCCESS'), count(*) from sync_log"
            ).fetchone()
        assert row == (args.days, args.days), f"sync_log rows (SUCCESS, all): {row}"
        written = sum(report.written for report in reports)
        assert written == args.days * args.records_per_day, f"rows written: {written}"
    ms = seconds * 1000 / len(reports)
    line = {
        "benchmark": "day_sessions",
        "feed": args.feed,
        "sessions": len(reports),
        "records_per_day": args.records_per_day,
        "seconds": round(seconds, 3),
        "ms_per_session": round(ms, 2),
        "client_cpu_ms_per_session": round(cpu * 1000 / len(reports), 2),
        "server_cpu_ms_per_session": None
        if server_cpu is None
        else round(server_cpu * 1000 / len(reports), 2),
        "select_1_ms": latency,
        "target_ms": TARGET_MS,
        "target_met": ms <= TARGET_MS,
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
