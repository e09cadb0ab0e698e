"""Benchmark of what a day partition's sync session costs by itself: N empty days synced
through sync_windows, the path the dated source assets run (defs/_source_assets.sync_daily),
into a fresh warehouse. Each day is its own session and transaction with its sync_log row;
the day has no records, so what is measured is the session's own overhead (connections,
locks, staging tables, sync_log bookkeeping), not loading.

Prints one JSON line: sessions, seconds, ms per session, the database round trip measured
beside it (`select 1`, ms) and the load average, so a number taken on a busy machine can be
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
from datetime import date, timedelta

from bench_server import add_server_options, benchmark_server, cpu_seconds, scratch_database

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.clients.base import Page, TimeWindow
from costudy_pipelines.lib.loading import connector
from costudy_pipelines.lib.loading.windows import sync_windows, utc_days
from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sources.registry import load_registry

TARGET_MS = 5.0
FIRST_DAY = date(2024, 1, 1)


def no_pages(window: TimeWindow) -> list[Page]:
    return []


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
    add_server_options(parser)
    args = parser.parse_args()
    feeds = {feed.asset: feed for _, feed in load_registry().feeds()}
    spec = feeds[args.feed].load
    days = list(utc_days(FIRST_DAY, FIRST_DAY + timedelta(days=args.days - 1)))
    with benchmark_server(args) as server, scratch_database(server, "bench_sessions") as url:
        apply_pending(url, PROJECT_ROOT / "sql" / "warehouse")
        latency = round_trip_ms(url)
        started, cpu_started = time.perf_counter(), cpu_seconds()
        reports = list(
            sync_windows(connector(url, source="--server-url"), spec, days, no_pages, run_id="b")
        )
        seconds = time.perf_counter() - started
        with pg.connect(url, source="--server-url") as conn:
            row = conn.execute(
                "select count(*) filter (where status = 'SUCCESS'), count(*) from sync_log"
            ).fetchone()
        assert row == (args.days, args.days), f"sync_log rows (SUCCESS, all): {row}"
    ms = seconds * 1000 / len(reports)
    line = {
        "benchmark": "day_sessions",
        "feed": args.feed,
        "sessions": len(reports),
        "seconds": round(seconds, 3),
        "ms_per_session": round(ms, 2),
        "client_cpu_ms_per_session": round((cpu_seconds() - cpu_started) * 1000 / len(reports), 2),
        "select_1_ms": latency,
        "target_ms": TARGET_MS,
        "target_met": ms <= TARGET_MS,
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
