"""Applying one database: transactions per file, refusals, dirty files, rollback, repair."""

from __future__ import annotations

from pathlib import Path

import pytest

from costudy_pipelines.lib.migrations import (
    MigrationFailed,
    PlanRefused,
    RunOptions,
    State,
    apply,
    apply_pending,
    baseline,
    discover,
    inspect,
    repair,
    rollback,
)
from costudy_pipelines_tests.lib.migrations.support import (
    ACCOUNTS,
    applied_versions,
    execute,
    history,
    query,
    snapshot,
    table_exists,
    target,
    write_files,
)


def test_empty_database_gets_every_file_then_reapply_is_a_no_op(fresh_db_url: str, folder: Path):
    write_files(folder, ACCOUNTS)

    first = apply_pending(fresh_db_url, folder)
    second = apply_pending(fresh_db_url, folder)

    assert [a.name for a in first.applied] == [
        "001-accounts.sql",
        "002-orders.sql",
        "003-order-total.sql",
    ]
    assert second.applied == () and second.already_applied == 3
    rows = query(
        fresh_db_url,
        "select version, checksum, status, transactional, applied_by, execution_ms"
        " from schema_migrations order by version",
    )
    checksums = [m.checksum for m in discover(folder)]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (v, c, "applied", True) for v, c in zip((1, 2, 3), checksums, strict=True)
    ]
    assert all("@" in r[4] and r[5] is not None for r in rows)
    assert history(fresh_db_url) == [("apply", 1), ("apply", 2), ("apply", 3)]
    execute(fresh_db_url, "insert into accounts (email) values ('a@x.test')")
    execute(fresh_db_url, "insert into orders (account_id, amount) values (1, 2.5), (1, 4)")
    assert query(fresh_db_url, "select account_total(1)") == [(6.5,)]


def test_nine_is_applied_before_ten(fresh_db_url: str, folder: Path):
    files = {f"{n}-noop.sql": f"select {n};" for n in range(1, 9)}
    files["9-create.sql"] = "create table nine (id int);"
    files["10-use.sql"] = "insert into nine values (10);"  # fails if run before 9
    write_files(folder, files)

    report = apply_pending(fresh_db_url, folder)

    assert [a.version for a in report.applied] == list(range(1, 11))
    assert query(fresh_db_url, "select id from nine") == [(10,)]


def test_failing_file_is_rolled_back_whole_and_says_where(fresh_db_url: str, folder: Path):
    write_files(folder, ACCOUNTS)
    apply_pending(fresh_db_url, folder)
    before = snapshot(fresh_db_url)
    write_files(
        folder,
        {
            "004-broken.sql": """
                create table invoices (id int primary key);
                insert into invoices values (1);
                alter table accounts add column nickname text;
                select missing_column
                  from accounts;
            """
        },
    )

    with pytest.raises(MigrationFailed) as raised:
        apply_pending(fresh_db_url, folder)

    message = str(raised.value)
    assert "004-broken.sql failed at line 4" in message
    assert "[select missing_column from accounts]" in message
    assert 'column "missing_column" does not exist (SQLSTATE 42703)' in message
    assert "Rolled back whole" in message
    assert snapshot(fresh_db_url) == before
    assert applied_versions(fresh_db_url) == [1, 2, 3]
    assert history(fresh_db_url)[-1] == ("fail", 4)


def test_error_without_position_is_located_by_statement_count(fresh_db_url: str, folder: Path):
    write_files(
        folder,
        {
            "001-dupes.sql": """
                create table t (id int primary key);
                insert into t values (1);
                insert into t values (2);
                insert into t values (1);
                insert into t values (3);
            """
        },
    )

    with pytest.raises(MigrationFailed) as raised:
        apply_pending(fresh_db_url, folder)

    assert "failed at line 4 in statement [insert into t values (1)]" in str(raised.value)
    assert "duplicate key value violates unique constraint" in str(raised.value)
    assert not table_exists(fresh_db_url, "t")


def test_edited_applied_file_is_refused_and_nothing_after_it_applies(
    fresh_db_url: str, folder: Path
):
    write_files(folder, ACCOUNTS)
    apply_pending(fresh_db_url, folder)
    recorded = discover(folder).by_version()[1].checksum
    write_files(folder, {"001-accounts.sql": ACCOUNTS["001-accounts.sql"] + "-- tweak\n"})
    write_files(folder, {"004-later.sql": "create table later (id int);"})
    edited = discover(folder).by_version()[1].checksum

    with pytest.raises(PlanRefused) as raised:
        apply_pending(fresh_db_url, folder)

    message = str(raised.value)
    assert f"{folder / '001-accounts.sql'} was edited after it was applied" in message
    assert recorded in message and edited in message
    assert not table_exists(fresh_db_url, "later")
    assert applied_versions(fresh_db_url) == [1, 2, 3]


def test_deleted_applied_file_shows_as_missing_and_blocks(fresh_db_url: str, folder: Path):
    write_files(folder, ACCOUNTS)
    apply_pending(fresh_db_url, folder)
    (folder / "003-order-total.sql").unlink()
    (folder / "003-order-total.down.sql").unlink()

    status = inspect(target(fresh_db_url), discover(folder), with_catalog=False)

    assert [s.state for s in status.states] == [State.APPLIED, State.APPLIED, State.MISSING_FILE]
    with pytest.raises(PlanRefused, match=r"version 3 .* is applied but its file is gone"):
        apply_pending(fresh_db_url, folder)


def test_refused_plan_leaves_an_untracked_database_untouched(fresh_db_url: str, folder: Path):
    write_files(
        folder,
        {
            "001-table.sql": "create table a (id int);",
            "002-index.sql": "create index concurrently a_idx on a (id);",
        },
    )

    with pytest.raises(PlanRefused, match=r"002-index.sql line 1: CREATE INDEX CONCURRENTLY"):
        apply_pending(fresh_db_url, folder)

    assert not table_exists(fresh_db_url, "a")
    assert not table_exists(fresh_db_url, "schema_migrations")


def test_concurrently_runs_outside_a_transaction_when_the_file_says_so(
    fresh_db_url: str, folder: Path
):
    write_files(
        folder,
        {
            "001-table.sql": "create table a (id int); insert into a select generate_series(1, 9);",
            "002-index.sql": """
                -- costudy:no-transaction
                create index concurrently a_idx on a (id);
                create unique index concurrently a_unique on a (id);
            """,
        },
    )

    report = apply_pending(fresh_db_url, folder)

    assert [a.mode for a in report.applied] == ["transaction", "no-transaction"]
    assert query(
        fresh_db_url,
        "select c.relname, i.indisvalid from pg_index i join pg_class c on c.oid = i.indexrelid"
        " where i.indrelid = 'a'::regclass order by 1",
    ) == [("a_idx", True), ("a_unique", True)]
    assert query(fresh_db_url, "select transactional from schema_migrations where version = 2") == [
        (False,)
    ]


def test_non_transactional_failure_leaves_version_dirty_until_repaired(
    fresh_db_url: str, folder: Path
):
    write_files(
        folder,
        {
            "001-two-steps.sql": """
                -- costudy:no-transaction
                create table kept (id int);
                begin;
                create table inside (id int);
                select 1/0;
                commit;
            """
        },
    )

    with pytest.raises(MigrationFailed) as raised:
        apply_pending(fresh_db_url, folder)

    message = str(raised.value)
    assert "failed at line 5 in statement [select 1/0]: division by zero" in message
    assert "the 3 statement(s) before it stay applied" in message and "dirty" in message
    assert table_exists(fresh_db_url, "kept") and not table_exists(fresh_db_url, "inside")
    migrations = discover(folder)
    [state] = inspect(target(fresh_db_url), migrations, with_catalog=False).states
    assert state.state is State.DIRTY and "division by zero" in state.recorded.error
    with pytest.raises(PlanRefused, match="is dirty"):
        apply_pending(fresh_db_url, folder)

    write_files(folder, {"001-two-steps.sql": "create table if not exists kept (id int);"})
    repaired = repair(
        target(fresh_db_url, "test"), discover(folder), dirty="pending", reason="fixed"
    )
    report = apply_pending(fresh_db_url, folder)

    assert repaired.actions == (
        "marked dirty 001-two-steps.sql as pending (it runs again on the next apply)",
    )
    assert [a.version for a in report.applied] == [1]
    assert [action for action, _ in history(fresh_db_url)] == ["fail", "repair", "apply"]


def test_file_with_its_own_begin_commit_stays_atomic(fresh_db_url: str, folder: Path):
    write_files(
        folder,
        {
            "001-wrapped.sql": """
                BEGIN;
                create table wrapped (id int);
                insert into wrapped values ('not a number');
                COMMIT;
            """
        },
    )

    with pytest.raises(MigrationFailed, match=r"failed at line 3 .*invalid input syntax"):
        apply_pending(fresh_db_url, folder)
    assert not table_exists(fresh_db_url, "wrapped")

    write_files(folder, {"001-wrapped.sql": "BEGIN;\ncreate table wrapped (id int);\nCOMMIT;\n"})
    report = apply_pending(fresh_db_url, folder)
    assert report.applied[0].mode == "wrapped" and table_exists(fresh_db_url, "wrapped")


def test_enum_value_used_in_its_own_transaction_fails_with_the_fix(fresh_db_url: str, folder: Path):
    write_files(
        folder,
        {
            "001-mood.sql": "create type mood as enum ('ok'); create table m (v mood);",
            "002-mood.sql": "alter type mood add value 'great'; insert into m values ('great');",
        },
    )

    with pytest.raises(MigrationFailed) as raised:
        apply_pending(fresh_db_url, folder)

    assert "SQLSTATE 55P04" in str(raised.value) and "move the statements" in str(raised.value)
    assert query(fresh_db_url, "select enum_range(null::mood)::text") == [("{ok}",)]


def test_rollback_runs_down_files_newest_first_in_one_transaction(fresh_db_url: str, folder: Path):
    write_files(folder, ACCOUNTS)
    apply_pending(fresh_db_url, folder)
    migrations = discover(folder)

    report = rollback(target(fresh_db_url, "test"), migrations, 2)

    assert [f.name for f in report.rolled_back] == [
        "003-order-total.down.sql",
        "002-orders.down.sql",
    ]
    assert applied_versions(fresh_db_url) == [1]
    assert not table_exists(fresh_db_url, "orders") and table_exists(fresh_db_url, "accounts")
    assert history(fresh_db_url)[-2:] == [("rollback", 3), ("rollback", 2)]
    assert [a.version for a in apply_pending(fresh_db_url, folder).applied] == [2, 3]


def test_failing_down_file_rolls_back_nothing(fresh_db_url: str, folder: Path):
    write_files(folder, ACCOUNTS)
    apply_pending(fresh_db_url, folder)
    write_files(folder, {"002-orders.down.sql": "drop table no_such_table;"})

    with pytest.raises(MigrationFailed, match=r"002-orders.down.sql failed at line 1"):
        rollback(target(fresh_db_url, "test"), discover(folder), 2)

    assert applied_versions(fresh_db_url) == [1, 2, 3]
    assert table_exists(fresh_db_url, "orders")
    assert query(fresh_db_url, "select count(*) from pg_proc where proname = 'account_total'") == [
        (1,)
    ]


def test_rollback_needs_a_down_file_for_every_version(fresh_db_url: str, folder: Path):
    write_files(folder, ACCOUNTS)
    write_files(folder, {"004-no-down.sql": "select 1;"})
    apply_pending(fresh_db_url, folder)

    with pytest.raises(
        PlanRefused, match=r"004-no-down.sql has no down file \(004-no-down.down.sql\)"
    ):
        rollback(target(fresh_db_url, "test"), discover(folder), 3)
    assert applied_versions(fresh_db_url) == [1, 2, 3, 4]


def test_repair_accepts_an_edited_checksum_deliberately(fresh_db_url: str, folder: Path):
    write_files(folder, ACCOUNTS)
    apply_pending(fresh_db_url, folder)
    old = discover(folder).by_version()[2].checksum
    write_files(folder, {"002-orders.sql": ACCOUNTS["002-orders.sql"] + "-- reformatted\n"})
    new = discover(folder).by_version()[2].checksum

    report = repair(target(fresh_db_url, "test"), discover(folder), reason="comment only")

    assert report.actions == (f"accepted the edited 002-orders.sql (checksum {old} -> {new})",)
    assert apply_pending(fresh_db_url, folder).applied == ()
    assert query(
        fresh_db_url,
        "select previous_checksum, checksum, detail from schema_migrations_history"
        " where action = 'repair'",
    ) == [(old, new, f"{report.actions[0]}; reason: comment only")]


def test_baseline_starts_tracking_an_existing_schema(fresh_db_url: str, folder: Path):
    write_files(folder, ACCOUNTS)
    execute(fresh_db_url, "create table accounts (id bigint primary key, email text)")

    marked = baseline(target(fresh_db_url, "test"), discover(folder), 1)
    report = apply_pending(fresh_db_url, folder)

    assert marked == [1]
    assert [a.version for a in report.applied] == [2, 3]
    assert query(fresh_db_url, "select status from schema_migrations where version = 1") == [
        ("baseline",)
    ]


def test_destructive_statement_needs_the_allow_directive_in_production(
    databases, folder: Path, tmp_path: Path
):
    write_files(folder, ACCOUNTS)
    write_files(folder, {"004-drop-created.sql": "alter table accounts drop column created_at;"})
    dev, prod = databases.create(), databases.create()
    options = RunOptions(backup_dir=tmp_path / "backups")

    apply(target(dev), discover(folder), options)
    with pytest.raises(
        PlanRefused, match=r"004-drop-created.sql line 1: ALTER TABLE … DROP COLUMN"
    ):
        apply(target(prod, "prod", production=True), discover(folder), options)
    assert not table_exists(prod, "accounts")

    write_files(
        folder,
        {
            "004-drop-created.sql": "-- costudy:allow-destructive\n"
            + "alter table accounts drop column created_at;"
        },
    )
    repair(target(dev), discover(folder))
    report = apply(target(prod, "prod", production=True), discover(folder), options)

    assert [a.version for a in report.applied] == [1, 2, 3, 4]
    assert report.backup is not None and report.backup.exists()


def test_session_settings_of_one_file_do_not_leak_into_the_next(fresh_db_url: str, folder: Path):
    write_files(
        folder,
        {
            "001-elsewhere.sql": "create schema elsewhere; set search_path = elsewhere;",
            "002-table.sql": "create table where_am_i (id int);",
        },
    )

    apply_pending(fresh_db_url, folder)

    assert query(fresh_db_url, "select to_regclass('public.where_am_i') is not null") == [(True,)]


def test_no_transaction_file_that_never_commits_is_rolled_back_and_dirty(
    fresh_db_url: str, folder: Path
):
    write_files(
        folder,
        {"001-open.sql": "-- costudy:no-transaction\nbegin;\ncreate table half (id int);\n"},
    )

    with pytest.raises(MigrationFailed, match="opened a transaction and never committed it"):
        apply_pending(fresh_db_url, folder)

    assert not table_exists(fresh_db_url, "half")
    assert query(fresh_db_url, "select status from schema_migrations") == [("dirty",)]
