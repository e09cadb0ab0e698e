"""How fast the reverse sync's direct strategy moves website demo requests into platform leads.

Builds a website database with N demo requests (1 % with invalid e-mails, the rest in mixed
case with stray spaces, one a second over the past month) and a platform database with the
schema from sql/platform, on the tests' PostgreSQL server (COSTUDY_TEST_PG_URL, or the embedded
test server), then times, printing JSON: the first sync, a re-run with nothing changed
(incremental, and full refresh), a re-run after 1 % of the rows were edited, and the
discrepancy check. Both databases are dropped afterwards.

    .venv/bin/python benchmarks/reverse_sync.py                 # 200,000 demo requests
    .venv/bin/python benchmarks/reverse_sync.py --rows 1000000 --chunk-size 5000
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import _checkout  # noqa: F401  (the checkout on sys.path: the tests' helpers)
import psutil

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.lib.reverse_sync import (
    SyncOptions,
    event_type,
    find_discrepancies,
    sync_event_type,
)
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines_tests.harness import TEST_URL_VAR, test_server_url

DEMO = event_type("demo_requests")
FILL = """
insert into demo_requests (email, name, company, content, created_at, updated_at)
select case when n %% 100 = 0 then 'not-an-email-' || n
            else '  Person' || n || '@Example.COM ' end,
       'Person ' || n, 'Company ' || (n %% 5000), 'Please show me the product',
       stamp, stamp
from generate_series(1, %s) as n,
     lateral (select now() - interval '30 days' + n * interval '1 second' as stamp) as t
"""


def timed(label: str, action: Callable[[], Any], rows: int) -> tuple[dict[str, Any], Any]:
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    stage = {"stage": label, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}
    stage["peak_rss_mb"] = round(psutil.Process().memory_info().rss / 1_048_576)
    return stage, result


def run(server_url: str, rows: int, chunk_size: int) -> list[dict[str, Any]]:
    website_url = pg.url_for_database(server_url, f"bench_website_{uuid.uuid4().hex[:8]}")
    platform_url = pg.url_for_database(server_url, f"bench_platform_{uuid.uuid4().hex[:8]}")
    names = [pg.parse_url(u, source=TEST_URL_VAR).database for u in (website_url, platform_url)]
    with pg.admin_connection(server_url, source=TEST_URL_VAR) as admin:
        for name in names:
            pg.create_database(admin, name)
    try:
        with (
            connect(website_url, source=TEST_URL_VAR, autocommit=True, utc=True) as website,
            connect(platform_url, source=TEST_URL_VAR, autocommit=True, utc=True) as platform,
        ):
            website.execute(
                (PROJECT_ROOT / "costudy_pipelines/sandbox/sql/website.sql").read_text()
            )
            website.execute(FILL, (rows,))
            website.execute("analyze demo_requests")
            apply_pending(platform_url, PROJECT_ROOT / "sql" / "platform")
            options = SyncOptions(chunk_size=chunk_size)

            def sync(**changes: Any) -> Any:
                opts = SyncOptions(**{**options.__dict__, **changes})
                return sync_event_type(DEMO, website, platform, opts).summary()

            stages = []
            for label, action in (
                ("first_sync", sync),
                ("rerun_no_change", sync),
                ("rerun_full_refresh_no_change", lambda: sync(full_refresh=True)),
            ):
                stage, summary = timed(label, action, rows)
                stages.append(stage | {"counts": summary})
            website.execute(
                "update demo_requests set company = company || ' (edited)', updated_at = now() "
                "where id % 100 = 7"
            )
            stage, summary = timed("rerun_one_percent_edited", sync, rows)
            stages.append(stage | {"counts": summary})
            stage, report = timed(
                "discrepancy_check", lambda: find_discrepancies(DEMO, website, platform), rows
            )
            stages.append(stage | {"discrepancies": report.count, "dead": report.dead_letters})
            return stages
    finally:
        with pg.admin_connection(server_url, source=TEST_URL_VAR) as admin:
            for name in names:
                pg.drop_database(admin, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--chunk-size", type=int, default=2000)
    args = parser.parse_args()
    stages = run(test_server_url(), args.rows, args.chunk_size)
    print(
        json.dumps({"rows": args.rows, "chunk_size": args.chunk_size, "stages": stages}, indent=2)
    )


if __name__ == "__main__":
    main()
