"""The website, course and platform databases hold the same world the records describe."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from costudy_pipelines.sandbox.dump import DB_TABLES, dump_world
from costudy_pipelines.sandbox.seed import (
    COURSE,
    PLATFORM_USERS,
    WEBSITE,
    TableLoad,
    apply_changes,
    platform_users_table_exists,
    schema_sql,
    seed_course,
    seed_platform_users,
    seed_website,
)
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines_tests.harness import DatabaseFactory

TIMESTAMPS = {"created_at", "updated_at", "completed_at", "valid_until"}
NUMERICS = {"price", "amount", "unit_price", "percent_off"}
MINIMAL_PLATFORM_USERS = """
create table users (
    id uuid primary key default gen_random_uuid(),
    email text not null unique,
    name text,
    username text unique,
    created_at timestamptz not null,
    bonus_credits integer not null default 0
)"""


def typed(record: dict, column: str) -> object:
    value = record[column]
    if value is None:
        return None
    if column in TIMESTAMPS:
        return datetime.fromisoformat(value)
    if column in NUMERICS:
        return Decimal(value)
    return value


def database_rows(url: str, load: TableLoad) -> list[tuple]:
    query = sql.SQL("select {} from {} order by {}").format(
        sql.SQL(", ").join(map(sql.Identifier, load.columns)),
        sql.Identifier(load.table),
        sql.Identifier(load.key),
    )
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def world_rows(world: World, load: TableLoad) -> list[tuple]:
    rows = [tuple(typed(r, c) for c in load.columns) for r in world.records(load.source)]
    return sorted(rows, key=lambda row: row[load.columns.index(load.key)])


def assert_same_world(url: str, world: World, loads: tuple[TableLoad, ...]) -> None:
    for load in loads:
        assert database_rows(url, load) == world_rows(world, load), load.table


@pytest.fixture
def world() -> World:
    return World(WorldConfig(seed=21, people=700))


def test_seeded_databases_follow_the_world_day_by_day(databases: DatabaseFactory, world: World):
    website = course = databases.create()  # the two apps' tables do not collide
    counts = seed_website(website, world) | seed_course(course, world)
    assert counts == {load.table: world.live_count(load.source) for load in WEBSITE + COURSE}
    assert_same_world(website, world, WEBSITE)
    assert_same_world(course, world, COURSE)
    for _ in range(2):
        report = world.advance_day()
        apply_changes(website, world, report, "website", source="WEBSITE_DB_URL")
        apply_changes(course, world, report, "course", source="COURSE_DB_URL")
        assert_same_world(website, world, WEBSITE)
        assert_same_world(course, world, COURSE)
    with psycopg.connect(website) as conn:  # the app can still insert: identities moved on
        new_id = conn.execute(
            "insert into votes (email, feature_slug, value) values ('x@example.com', 'a', 1) "
            "returning id"
        ).fetchone()[0]
    assert new_id > world.count("votes")


def test_metacharacters_and_unicode_survive_copy(databases: DatabaseFactory, world: World):
    url = databases.create()
    seed_website(url, world)
    with psycopg.connect(url) as conn:
        stored = {row[0] for row in conn.execute("select content from contact_submissions")}
        names = {row[0] for row in conn.execute("select name from demo_requests")}
    expected = {r["content"] for r in world.records("contact_submissions")}
    assert stored == expected
    assert any("SELECT * FROM prices;" in text and '"team"' in text for text in stored)
    assert any("\t" in text and "\\" in text for text in stored)
    assert any("🙏" in text for text in stored)
    assert names == {r["name"] for r in world.records("demo_requests")}


def test_dumped_table_csvs_load_with_copy(databases: DatabaseFactory, tmp_path: Path, world):
    dump_world(world, tmp_path)
    website = course = databases.create()
    for url, database in ((website, "website"), (course, "course")):
        with psycopg.connect(url) as conn:
            conn.execute(schema_sql(database))
            for folder, _, table, _ in DB_TABLES:
                if folder != database:
                    continue
                statement = sql.SQL("copy {} from stdin (format csv, header true)")
                with conn.cursor().copy(statement.format(sql.Identifier(table))) as copy:
                    copy.write((tmp_path / folder / f"{table}.csv").read_bytes())
    assert_same_world(website, world, WEBSITE)
    assert_same_world(course, world, COURSE)


def test_platform_users_upsert_into_the_platform_table(databases: DatabaseFactory, world: World):
    url = databases.create()
    assert not platform_users_table_exists(url)
    with psycopg.connect(url) as conn:
        conn.execute(MINIMAL_PLATFORM_USERS)
    assert platform_users_table_exists(url)
    assert seed_platform_users(url, world) == world.live_count("platform_users")
    assert_same_world(url, world, (PLATFORM_USERS,))
    report = world.advance_day()
    apply_changes(url, world, report, "platform", source="PLATFORM_DB_URL")
    assert_same_world(url, world, (PLATFORM_USERS,))
