"""The tracking table: configurable, never confused with another tool's, adopting their history,
and the session timeouts that keep a file from waiting on a table lock forever."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.migrations import (
    MigrationError,
    MigrationFailed,
    PlanRefused,
    apply,
    discover,
)
from costudy_pipelines.lib.migrations.maintenance import adopt
from costudy_pipelines.lib.migrations.target import Timeouts
from costudy_pipelines.lib.migrations.tracking import TrackingTable
from costudy_pipelines_tests.lib.migrations.support import (
    ACCOUNTS,
    applied_versions,
    execute,
    query,
    table_exists,
    target,
    write_files,
)

GOLANG_TABLE = "create table schema_migrations (version bigint primary key, dirty boolean not null)"
OWN = TrackingTable("costudy", "migrations")


def test_golang_migrate_table_is_refused_clearly_and_left_alone(fresh_db_url: str, folder: Path):
    write_files(folder, ACCOUNTS)
    execute(fresh_db_url, GOLANG_TABLE)
    execute(fresh_db_url, "insert into schema_migrations values (3, false)")

    with pytest.raises(MigrationError) as raised:
        apply(target(fresh_db_url), discover(folder))

    message = str(raised.value)
    assert "public.schema_migrations exists but is not costudy's tracking table" in message
    assert "(dirty, version) look like golang-migrate's" in message
    assert "tracking_table" in message and "init --from golang-migrate" in message
    assert not table_exists(fresh_db_url, "accounts")
    assert not table_exists(fresh_db_url, "schema_migrations_history")
    assert query(fresh_db_url, "select * from schema_migrations") == [(3, False)]


def test_a_file_naming_the_tracking_table_is_refused(fresh_db_url: str, folder: Path):
    write_files(
        folder, {"001-a.sql": "create table a ();\nalter table schema_migrations add x int;"}
    )

    with pytest.raises(
        PlanRefused, match=r"001-a\.sql line 2: names schema_migrations, the runner.s"
    ):
        apply(target(fresh_db_url), discover(folder))
    assert not table_exists(fresh_db_url, "a")


def test_flyway_history_configured_as_tracking_table_is_refused(fresh_db_url: str, folder: Path):
    execute(
        fresh_db_url,
        "create table flyway_schema_history (installed_rank int primary key, version text,"
        " description text, type text, script text, checksum int, success boolean)",
    )
    flyway = replace(
        target(fresh_db_url), tracking=TrackingTable("public", "flyway_schema_history")
    )

    with pytest.raises(MigrationError, match="look like Flyway's"):
        apply(flyway, discover(write_files(folder, ACCOUNTS)))


def test_configured_tracking_table_works_beside_a_foreign_one(fresh_db_url: str, folder: Path):
    write_files(folder, ACCOUNTS)
    execute(fresh_db_url, GOLANG_TABLE)
    own = replace(target(fresh_db_url), tracking=OWN)

    first = apply(own, discover(folder))
    again = apply(own, discover(folder))

    assert len(first.applied) == 3 and again.applied == ()
    assert query(fresh_db_url, "select version from costudy.migrations order by 1") == [
        (1,),
        (2,),
        (3,),
    ]
    assert query(fresh_db_url, "select count(*) from costudy.migrations_history") == [(3,)]
    assert query(fresh_db_url, "select count(*) from schema_migrations") == [(0,)]


def test_adopting_golang_migrate_history_baselines_at_its_version(fresh_db_url: str, folder: Path):
    write_files(folder, ACCOUNTS)
    two_files = write_files(folder.parent / "two" / "app", dict(list(ACCOUNTS.items())[:4]))
    apply(target(fresh_db_url), discover(two_files))  # the schema golang-migrate built
    execute(fresh_db_url, "drop table schema_migrations, schema_migrations_history")
    execute(fresh_db_url, GOLANG_TABLE)
    execute(fresh_db_url, "insert into schema_migrations values (2, false)")
    own = replace(target(fresh_db_url), tracking=OWN)

    with pytest.raises(MigrationError, match="also costudy's tracking table"):
        adopt(target(fresh_db_url), discover(folder), "golang-migrate")
    adopted = adopt(own, discover(folder), "golang-migrate")
    report = apply(own, discover(folder))

    assert adopted == [1, 2]
    assert [applied.version for applied in report.applied] == [3]
    assert query(fresh_db_url, "select version, status from costudy.migrations order by 1") == [
        (1, "baseline"),
        (2, "baseline"),
        (3, "applied"),
    ]


def test_adopting_flyway_history(fresh_db_url: str, folder: Path):
    write_files(folder, {"V1__a.sql": "create table a ();", "V2__b.sql": "create table b ();"})
    execute(
        fresh_db_url,
        "create table flyway_schema_history (installed_rank int primary key, version text,"
        " script text, success boolean not null);"
        " insert into flyway_schema_history values (1, '1', 'V1__a.sql', true);"
        " create table a ()",
    )

    adopted = adopt(target(fresh_db_url), discover(folder), "flyway")
    report = apply(target(fresh_db_url), discover(folder))

    assert adopted == [1] and [applied.name for applied in report.applied] == ["V2__b.sql"]


def test_tracking_table_of_integer_versions_is_widened_and_its_records_kept(
    fresh_db_url: str, folder: Path
):
    write_files(folder, dict(list(ACCOUNTS.items())[:2]))
    apply(target(fresh_db_url), discover(folder))
    # The shape before timestamps were versions: integer columns.
    execute(fresh_db_url, "alter table schema_migrations alter column version type integer")
    execute(fresh_db_url, "alter table schema_migrations_history alter column version type integer")
    write_files(folder, ACCOUNTS)

    report = apply(target(fresh_db_url), discover(folder))

    assert [applied.version for applied in report.applied] == [2, 3]
    assert applied_versions(fresh_db_url) == [1, 2, 3]
    assert query(
        fresh_db_url,
        "select format_type(atttypid, null) from pg_attribute where attname = 'version'"
        " and attrelid in ('schema_migrations'::regclass, 'schema_migrations_history'::regclass)",
    ) == [("bigint",), ("bigint",)]


def test_statement_timeout_fails_the_file_whole(fresh_db_url: str, folder: Path):
    write_files(folder, {"001-slow.sql": "create table a ();\nselect pg_sleep(30);\n"})
    bounded = replace(target(fresh_db_url), timeouts=Timeouts(statement_s=0.2))

    with pytest.raises(MigrationFailed) as raised:
        apply(bounded, discover(folder))

    assert str(raised.value).startswith(
        "app/dev: 001-slow.sql failed at line 2 in statement [select pg_sleep(30)]: "
        "canceling statement due to statement timeout"
    )
    assert "statement_timeout 0.2s" in str(raised.value)
    assert not table_exists(fresh_db_url, "a")


def test_blocked_alter_fails_within_the_lock_timeout_naming_the_blocker(
    fresh_db_url: str, folder: Path
):
    write_files(folder, dict(list(ACCOUNTS.items())[:2]))
    apply(target(fresh_db_url), discover(folder))
    write_files(folder, {"002-add-nickname.sql": "alter table accounts add column nickname text;"})
    bounded = replace(target(fresh_db_url), timeouts=Timeouts(lock_s=1.0))

    with psycopg.connect(
        pg.libpq_dsn(fresh_db_url, source="test"), application_name="report"
    ) as blocker:
        blocker.execute("select count(*) from accounts")  # holds ACCESS SHARE until rollback
        blocker_pid = blocker.info.backend_pid
        with pytest.raises(MigrationFailed) as raised:
            apply(bounded, discover(folder))

    message = str(raised.value)
    assert message.startswith(
        "app/dev: 002-add-nickname.sql failed at line 1 in statement "
        "[alter table accounts add column nickname text]: canceling statement due to lock timeout"
    )
    assert f"Blocked by pid {blocker_pid} (report, user " in message
    assert "idle in transaction" in message and "select count(*) from accounts" in message
    assert "lock_timeout 1s" in message
    assert applied_versions(fresh_db_url) == [1]
