"""Benchmark of the cross-database checks at scale: people discrepancies (platform users
against the warehouse's copy) and per-day counts, both compared in SQL after streaming one
side's keys into the warehouse by COPY.

Builds, with SQL on the server (no Python rows): an application database with N people
(`users(id uuid, email, name, created_at)`, the columns the comparison reads) and a
warehouse (sql/warehouse migrations) holding the same N as users + platform_users, then
injects K discrepancies of each kind (missing on either side, email and name changed).
Prints one JSON line per stage: wall seconds, CPU seconds of this process, peak RSS, what
was found (must be exactly K of each), and the machine's load average.

    .venv/bin/python benchmarks/discrepancies.py --people 1000000 \
        --server-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/discrepancies.py --embedded      # the project's embedded server

Fresh databases are created on the server for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench_server import (
    add_server_options,
    benchmark_server,
    scratch_database,
    timed,
)

from costudy_pipelines.lib.count_comparison import (
    SourceTable,
    SyncedDays,
    WarehouseFeed,
    compare_database,
)
from costudy_pipelines.lib.discrepancies import PeopleSource, compare_people
from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.lib.settings import PROJECT_ROOT

APPLICATION_SQL = """
create table users (id uuid primary key, email text not null, name text,
                    created_at timestamptz not null);
insert into users
select md5('u' || n)::uuid, 'person' || n || '@example.com', 'Person ' || n,
       timestamptz '2024-01-01' + (n % 90) * interval '1 day' + (n % 86400) * interval '1 second'
from generate_series(1, %(people)s) as n;
analyze users;
"""
WAREHOUSE_SQL = """
insert into users (id, email, name, email_source, email_source_record, name_source)
select md5('w' || n)::uuid, 'person' || n || '@example.com', 'Person ' || n, 'platform',
       'platform_users:' || n, 'platform'
from generate_series(1, %(people)s) as n;
insert into platform_users (external_id, user_id, email, occurred_at, raw, content_hash)
select md5('u' || n)::uuid::text, md5('w' || n)::uuid, 'person' || n || '@example.com',
       timestamptz '2024-01-01' + (n % 90) * interval '1 day' + (n % 86400) * interval '1 second',
       jsonb_build_object('name', 'Person ' || n), '\\x00'
from generate_series(1, %(people)s) as n;
analyze users;
analyze platform_users;
"""
# K of each kind, on the application side: a person the warehouse lacks, one it should no
# longer have, a changed email, a changed name.
INJECT_SQL = """
insert into users
select gen_random_uuid(), 'newcomer' || n || '@example.com', 'New ' || n,
       timestamptz '2024-01-05 12:00'
from generate_series(1, %(k)s) as n;
delete from users where id in (select md5('u' || n)::uuid from generate_series(1, %(k)s) n);
update users set email = 'moved.' || email
where id in (select md5('u' || n)::uuid from generate_series(%(k)s + 1, 2 * %(k)s) n);
update users set name = name || ' Jr.'
where id in (select md5('u' || n)::uuid from generate_series(2 * %(k)s + 1, 3 * %(k)s) n);
"""


def build(application: str, warehouse: str, people: int, k: int) -> dict[str, Any]:
    with connect(application, source="application", autocommit=True) as conn:
        conn.execute(APPLICATION_SQL.replace("%(people)s", str(people)))
    apply_pending(warehouse, PROJECT_ROOT / "sql" / "warehouse")
    with connect(warehouse, source="warehouse", autocommit=True) as conn:
        conn.execute(WAREHOUSE_SQL.replace("%(people)s", str(people)))
        conn.execute(
            "insert into sync_log (source, target_table, full_sync, status, completed_at)"
            " values ('platform_users', 'platform_users', true, 'SUCCESS', now())"
        )
    with connect(application, source="application", autocommit=True) as conn:
        conn.execute(INJECT_SQL.replace("%(k)s", str(k)))
    return {"people": people, "injected_per_kind": k}


def people(application: str, warehouse: str) -> dict[str, Any]:
    source = PeopleSource(table="users", warehouse_table="platform_users")
    with (
        connect(application, source="application", autocommit=True) as app,
        connect(warehouse, source="warehouse", autocommit=True) as wh,
    ):
        found = compare_people(app, wh, source)
    return {
        "compared": found.compared,
        "missing_in_warehouse": found.missing_in_warehouse.count,
        "missing_in_application": found.missing_in_application.count,
        "emails_differ": found.emails_differ.count,
        "names_differ": found.names_differ.count,
    }


def counts(application: str, warehouse: str) -> dict[str, Any]:
    feed = WarehouseFeed("platform_users", "platform_users")
    with (
        connect(application, source="application", autocommit=True) as app,
        connect(warehouse, source="warehouse", autocommit=True) as wh,
    ):
        found = compare_database(app, SourceTable("users"), wh, feed, SyncedDays(frozenset(), True))
    return {
        "days_compared": len(found.days),
        "days_differing": len(found.differing),
        "missing_in_warehouse": found.missing_in_warehouse.count,
        "missing_in_source": found.missing_in_source.count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--discrepancies", type=int, default=100, help="injected of each kind")
    add_server_options(parser)
    args = parser.parse_args()
    with (
        benchmark_server(args) as admin_url,
        scratch_database(admin_url, "bench_app") as application,
        scratch_database(admin_url, "bench_wh") as warehouse,
    ):
        timed("build", lambda: build(application, warehouse, args.people, args.discrepancies))
        timed("people_discrepancies", lambda: people(application, warehouse))
        timed("counts_per_day", lambda: counts(application, warehouse))


if __name__ == "__main__":
    main()
