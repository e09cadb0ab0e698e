"""Load the world into the website, course and platform databases.

Full loads stream each table through one COPY (psycopg 3 `cursor.copy`, rows written as they
are generated, so memory stays bounded at any world size) inside one transaction per
database: a failed load leaves the database as it was. `apply_changes` replays one advanced
day (the ChangeReport) as deletes plus a COPY into a temporary table and one
`INSERT ... ON CONFLICT DO UPDATE`, so the databases follow the world day by day.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from costudy_pipelines.lib import pg
from costudy_pipelines.sandbox.changes import ChangeReport
from costudy_pipelines.sandbox.generators import COURSE_TABLES, WEBSITE_TABLES
from costudy_pipelines.sandbox.generators.course import COLUMNS as COURSE_COLUMNS
from costudy_pipelines.sandbox.generators.platform import COLUMNS as PLATFORM_COLUMNS
from costudy_pipelines.sandbox.generators.website import COLUMNS as WEBSITE_COLUMNS
from costudy_pipelines.sandbox.world import World


@dataclass(frozen=True)
class TableLoad:
    source: str  # the world's source name
    table: str
    columns: tuple[str, ...]
    key: str  # the column `apply_changes` matches on


WEBSITE = tuple(TableLoad(t, t, WEBSITE_COLUMNS[t], "id") for t in WEBSITE_TABLES)
COURSE = tuple(TableLoad(t, t, COURSE_COLUMNS[t], "id") for t in COURSE_TABLES)  # FK order
# The platform schema belongs to sql/platform; all this assumes is
# users(email unique, name, username, created_at), other columns having defaults.
PLATFORM_USERS = TableLoad("platform_users", "users", PLATFORM_COLUMNS, "email")


def schema_sql(database: str) -> str:
    """The DDL the website or course app owns (sandbox/sql/<database>.sql)."""
    return resources.files("costudy_pipelines.sandbox").joinpath(f"sql/{database}.sql").read_text()


def seed_website(url: str, world: World, *, source: str = "WEBSITE_DB_URL") -> dict[str, int]:
    """Create the website schema if needed and replace its rows with the world's."""
    return _seed(url, world, "website", WEBSITE, source)


def seed_course(url: str, world: World, *, source: str = "COURSE_DB_URL") -> dict[str, int]:
    """Create the course schema if needed and replace its rows with the world's."""
    return _seed(url, world, "course", COURSE, source)


def seed_platform_users(url: str, world: World, *, source: str = "PLATFORM_DB_URL") -> int:
    """Upsert the world's platform users by email (the platform's own migrations must have
    created `users`; other platform tables are left alone)."""
    with pg.connect(url, source=source) as conn:
        return _upsert(conn, PLATFORM_USERS, world.records(PLATFORM_USERS.source))


def platform_users_table_exists(url: str, *, source: str = "PLATFORM_DB_URL") -> bool:
    with pg.connect(url, source=source) as conn:
        row = conn.execute("select to_regclass('users') is not null").fetchone()
        assert row is not None  # SELECT without FROM returns its one row
        return row[0]


def apply_changes(
    url: str, world: World, report: ChangeReport, database: str, *, source: str
) -> dict[str, int]:
    """Make a seeded database follow one advanced day: rows per table written or deleted."""
    loads = {"website": WEBSITE, "course": COURSE, "platform": (PLATFORM_USERS,)}[database]
    written: dict[str, int] = {}
    with pg.connect(url, source=source) as conn:
        for load in reversed(loads):  # children first, so no foreign key is left dangling
            gone = sorted(report.sources[load.source].deleted)
            written[load.table] = _delete(conn, load, gone)
        for load in loads:  # parents first
            changes = report.sources[load.source]
            records = _records_by_key(world, load, changes.added | changes.changed)
            written[load.table] += _upsert(conn, load, records)
        _reset_identities(conn, [load for load in loads if load.key == "id"])
    return written


def _seed(url: str, world: World, database: str, loads: tuple[TableLoad, ...], source: str):
    counts: dict[str, int] = {}
    with pg.connect(url, source=source) as conn:
        conn.execute(schema_sql(database))
        tables = sql.SQL(", ").join(sql.Identifier(load.table) for load in loads)
        conn.execute(sql.SQL("truncate {} restart identity cascade").format(tables))
        for load in loads:
            counts[load.table] = _copy(conn, load.table, load.columns, world.records(load.source))
        _reset_identities(conn, loads)
    return counts


def _copy(
    conn: psycopg.Connection, table: str, columns: tuple[str, ...], records: Iterable[dict]
) -> int:
    statement = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count = 0
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for record in records:
            copy.write_row([_adapt(record[column]) for column in columns])
            count += 1
    return count


def _adapt(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict) else value


def _upsert(conn: psycopg.Connection, load: TableLoad, records: Iterable[dict]) -> int:
    """COPY into a temporary twin of the table, then one INSERT ... ON CONFLICT DO UPDATE."""
    staging = f"staging_{load.table}"
    conn.execute(
        sql.SQL("create temporary table {} (like {} including defaults) on commit drop").format(
            sql.Identifier(staging), sql.Identifier(load.table)
        )
    )
    count = _copy(conn, staging, load.columns, records)
    columns = sql.SQL(", ").join(map(sql.Identifier, load.columns))
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = excluded.{0}").format(sql.Identifier(column))
        for column in load.columns
        if column != load.key
    )
    conn.execute(
        sql.SQL(
            "insert into {table} ({columns}) select {columns} from {staging} "
            "on conflict ({key}) do update set {updates}"
        ).format(
            table=sql.Identifier(load.table),
            columns=columns,
            staging=sql.Identifier(staging),
            key=sql.Identifier(load.key),
            updates=updates,
        )
    )
    conn.execute(sql.SQL("drop table {}").format(sql.Identifier(staging)))
    return count


def _delete(conn: psycopg.Connection, load: TableLoad, keys: list[str]) -> int:
    if not keys:
        return 0
    values = [int(key) for key in keys] if load.key == "id" else keys
    cursor = conn.execute(
        sql.SQL("delete from {} where {} = any(%s)").format(
            sql.Identifier(load.table), sql.Identifier(load.key)
        ),
        (values,),
    )
    return cursor.rowcount


def _records_by_key(world: World, load: TableLoad, keys: Iterable[str]) -> Iterator[dict]:
    """The current records behind changed keys (ids are index + 1; platform keys are emails)."""
    if load.key == "id":
        for key in sorted(keys, key=int):
            record = world.record(load.source, int(key) - 1)
            assert record is not None  # added and changed records are live
            yield record
        return
    wanted = set(keys)
    yield from (record for record in world.records(load.source) if record[load.key] in wanted)


def _reset_identities(conn: psycopg.Connection, loads: Iterable[TableLoad]) -> None:
    """Explicit ids were copied in: move each identity past them so the app can insert."""
    for load in loads:
        conn.execute(
            sql.SQL(
                "select setval(pg_get_serial_sequence(%s, 'id'), coalesce(max(id), 0) + 1, false)"
                " from {}"
            ).format(sql.Identifier(load.table)),
            (load.table,),
        )
