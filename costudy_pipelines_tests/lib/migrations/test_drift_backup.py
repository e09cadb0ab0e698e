"""Drift between environments, and the production backup taken before applying."""

from __future__ import annotations

from pathlib import Path

import pytest

from costudy_pipelines.lib.migrations import (
    BackupError,
    RunOptions,
    apply,
    discover,
    inspect,
)
from costudy_pipelines.lib.migrations.backup import choose_client, client_candidates, restore
from costudy_pipelines.lib.migrations.promotion import drift_across
from costudy_pipelines_tests.lib.migrations.support import (
    ACCOUNTS,
    execute,
    query,
    snapshot,
    target,
    write_files,
)


@pytest.fixture
def dev_and_prod(databases, folder: Path) -> tuple[str, str]:
    """Two databases with the same files applied."""
    write_files(folder, ACCOUNTS)
    dev, prod = databases.create(), databases.create()
    for url in (dev, prod):
        apply(target(url), discover(folder))
    return dev, prod


def _drift(dev: str, prod: str, folder: Path) -> list[str]:
    migrations = discover(folder)
    statuses = [inspect(target(dev, "dev"), migrations), inspect(target(prod, "prod"), migrations)]
    return [str(drift) for drift in drift_across(statuses)]


def test_same_files_same_catalog_no_drift(dev_and_prod: tuple[str, str], folder: Path):
    assert _drift(*dev_and_prod, folder) == []


def test_manual_changes_in_prod_are_reported_precisely(dev_and_prod: tuple[str, str], folder: Path):
    dev, prod = dev_and_prod
    execute(prod, "alter table accounts add column nickname text")
    execute(prod, "alter table accounts alter column email type varchar(100)")
    execute(prod, "drop index accounts_created_idx")
    execute(
        prod,
        "create or replace function account_total(p_account bigint) returns numeric"
        " language sql as 'select 0::numeric'",
    )

    assert _drift(dev, prod, folder) == [
        "catalog: column public.accounts.email: differs: "
        "dev 'text not null', prod 'character varying(100) not null'",
        "catalog: column public.accounts.nickname: exists only in prod: text",
        "catalog: function public.account_total(p_account bigint): differs: "
        + "dev {!r}, prod {!r}".format(*_function_definitions(dev, prod)),
        "catalog: index public.accounts_created_idx: exists only in dev: "
        "CREATE INDEX accounts_created_idx ON public.accounts USING btree "
        "(created_at)",
    ]


def _function_definitions(*urls: str) -> list[str]:
    return [snapshot(url)[("function", "public.account_total(p_account bigint)")] for url in urls]


def test_applied_sets_that_disagree_are_drift(databases, folder: Path):
    write_files(folder, ACCOUNTS)
    dev, prod = databases.create(), databases.create()
    apply(target(dev), discover(folder))
    apply(target(prod), discover(folder))
    execute(prod, "update schema_migrations set checksum = 'hand-edited' where version = 2")
    execute(dev, "delete from schema_migrations where version = 3")

    assert _drift(dev, prod, folder) == [
        "applied set: version 3: applied in prod but not in dev",
        f"checksum: version 2: dev applied checksum {discover(folder).by_version()[2].checksum}"
        ", prod applied hand-edited",
    ]


def test_dev_ahead_of_prod_is_pending_not_drift(databases, folder: Path):
    write_files(folder, ACCOUNTS)
    dev, prod = databases.create(), databases.create()
    apply(target(dev), discover(folder))

    assert _drift(dev, prod, folder) == []


def test_production_is_backed_up_before_apply_and_the_backup_restores(
    databases, folder: Path, tmp_path: Path
):
    write_files(folder, {k: v for k, v in ACCOUNTS.items() if k.startswith("001")})
    prod = databases.create()
    prod_target = target(prod, "prod", production=True)
    options = RunOptions(backup_dir=tmp_path / "backups", skip_backup=True)
    apply(prod_target, discover(folder), options)
    execute(prod, "insert into accounts (email) values ('kept@x.test')")
    before = snapshot(prod)
    write_files(folder, ACCOUNTS)

    report = apply(prod_target, discover(folder), RunOptions(backup_dir=tmp_path / "backups"))

    assert report.backup is not None and report.backup.parent == tmp_path / "backups"
    assert report.backup.name.startswith("app-prod-") and report.backup.name.endswith("-v1.dump")
    assert query(
        prod, "select distinct backup_path from schema_migrations_history where version > 1"
    ) == [(str(report.backup),)]
    restored = databases.create()
    server_major = int(query(restored, "show server_version_num")[0][0]) // 10000
    restore(report.backup, target(restored), server_major=server_major)
    assert snapshot(restored) == before
    assert query(restored, "select email from accounts") == [("kept@x.test",)]
    assert query(restored, "select version from schema_migrations") == [(1,)]


def test_no_pg_dump_new_enough_is_a_clear_error():
    candidates = client_candidates("pg_dump")

    with pytest.raises(BackupError) as raised:
        choose_client("pg_dump", 99, candidates)

    message = str(raised.value)
    assert message.startswith("no pg_dump can handle PostgreSQL 99 (found: ")
    assert all(str(path) in message for path in candidates)
    assert "--skip-backup" in message
