"""`costudy migrate` end to end through click, against real test databases."""

from __future__ import annotations

import re
from pathlib import Path

from costudy_pipelines_tests.lib.migrations.support import (
    ACCOUNTS,
    Cli,
    applied_versions,
    execute,
    query,
    table_exists,
    write_files,
)


def test_apply_promotes_dev_then_prod_with_a_prod_backup(cli: Cli, tmp_path: Path):
    result = cli("apply")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    dev_line = next(i for i, line in enumerate(lines) if line.startswith("app/dev"))
    prod_line = next(i for i, line in enumerate(lines) if line.startswith("app/prod"))
    assert dev_line < prod_line and "3 applied" in lines[prod_line]
    [backup] = (tmp_path / "backups").glob("app-prod-*.dump")
    assert f"backup: {backup}" in result.output
    assert applied_versions(cli.dev) == applied_versions(cli.prod) == [1, 2, 3]


def test_status_exit_code_says_whether_anything_is_wrong(cli: Cli, folder: Path):
    pending = cli("status")
    strict = cli("status", "--fail-on-pending")
    assert pending.exit_code == 0 and "0 applied, 3 pending" in pending.output
    assert strict.exit_code == 1

    assert cli("sync").exit_code == 0
    clean = cli("status")
    assert clean.exit_code == 0, clean.output
    assert "drift (dev → prod): none" in clean.output

    original = (folder / "002-orders.sql").read_text()
    (folder / "002-orders.sql").write_text(original + "-- edited\n")
    edited = cli("status", "--env", "prod")
    assert edited.exit_code == 1
    assert re.search(r"002-orders.sql\s+edited", edited.output)
    assert "was edited after it was applied" in edited.output

    (folder / "002-orders.sql").write_text(original)
    execute(cli.prod, "alter table orders add column note text")
    drifted = cli("status")
    assert drifted.exit_code == 1
    assert "catalog: column public.orders.note: exists only in prod: text" in drifted.output


def test_dry_run_prints_the_plan_and_sql_and_changes_nothing(cli: Cli, folder: Path):
    write_files(folder, {"004-index.sql": "create index accounts_email_idx on accounts (email);"})

    result = cli("apply", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "would apply 001-accounts.sql (transaction)" in result.output
    assert "lint line 1: error index-not-concurrent" in result.output  # 004 only
    assert result.output.count("lint line") == 2  # 004 for dev and for prod
    assert "create index accounts_created_idx on accounts (created_at);" in result.output
    assert not table_exists(cli.dev, "schema_migrations") and not table_exists(cli.prod, "accounts")


def test_apply_stops_at_the_first_failing_environment(cli: Cli, folder: Path):
    write_files(folder, {"004-broken.sql": "select 1;\nselect no_such_thing;\n"})

    result = cli("apply")

    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert "Traceback" not in result.output
    assert "Error: app/dev: 004-broken.sql failed at line 2" in result.output
    assert applied_versions(cli.dev) == [1, 2, 3]
    assert not table_exists(cli.prod, "accounts")


def test_prod_alone_waits_for_dev(cli: Cli):
    result = cli("apply", "--env", "prod")

    assert result.exit_code == 1
    assert "001-accounts.sql is not applied in app/dev yet" in result.output
    assert not table_exists(cli.prod, "accounts")


def test_rollback_and_repair_from_the_command_line(cli: Cli, folder: Path):
    assert cli("apply", "--env", "dev").exit_code == 0

    rolled = cli("rollback", "3", "--env", "dev")
    (folder / "001-accounts.sql").write_text(ACCOUNTS["001-accounts.sql"] + "-- doc\n")
    refused = cli("apply", "--env", "dev")
    repaired = cli("repair", "--env", "dev", "--reason", "comment added")

    assert rolled.exit_code == 0 and "rolled back 003-order-total.sql" in rolled.output
    assert refused.exit_code == 1 and "was edited after it was applied" in refused.output
    assert repaired.exit_code == 0 and "accepted the edited 001-accounts.sql" in repaired.output
    assert cli("apply", "--env", "dev").exit_code == 0
    assert applied_versions(cli.dev) == [1, 2, 3]


def test_validate_refuses_destructive_files_bound_for_prod(cli: Cli, folder: Path):
    write_files(folder, {"004-drop.sql": "alter table orders drop column amount;"})
    refused = cli("validate", "--offline")
    write_files(
        folder,
        {
            "004-drop.sql": "-- costudy:allow-destructive\n"
            + "alter table orders drop column amount;"
        },
    )
    allowed = cli("validate")

    assert refused.exit_code == 1
    assert "004-drop.sql line 1: ALTER TABLE … DROP COLUMN" in refused.output
    assert allowed.exit_code == 0 and allowed.output.strip() == "valid"


def test_init_baselines_an_existing_database(cli: Cli):
    execute(cli.dev, "create table accounts (id bigint primary key)")

    result = cli("init", "--env", "dev", "--baseline", "1")

    assert result.exit_code == 0 and "app/dev: tracking, baselined versions 1–1" in result.output
    status = cli("status", "--env", "dev", "--no-catalog")
    assert re.search(r"001-accounts.sql\s+baseline", status.output)


def test_status_lists_backups_and_restore_round_trips_one(cli: Cli, databases, folder: Path):
    write_files(folder, {"003-order-total.sql": "select 1;"})  # a smaller third file
    assert cli("apply").exit_code == 0
    execute(cli.prod, "insert into accounts (email) values ('kept@x.test')")
    write_files(folder, {"004-later.sql": "create table later (id int);"})
    assert cli("apply").exit_code == 0
    status = cli("status", "--no-catalog")
    [backup] = sorted(Path(cli.env["COSTUDY_MIGRATIONS_CONFIG"]).parent.glob("backups/*-v3.dump"))
    cli.env["RESTORE_URL"] = fresh = databases.create()

    refused = cli("restore", str(backup), "--env", "prod")
    restored = cli("restore", str(backup), "--env", "prod", "--url-env", "RESTORE_URL")

    assert "backups in " in status.output and "prod  " in status.output
    assert re.search(rf"prod\s+\S+ \S+\s+at v3\s+[\d.]+ MB\s+{backup.name}", status.output)
    assert refused.exit_code == 1 and "is not empty" in refused.output
    assert restored.exit_code == 0, restored.output
    assert query(fresh, "select email from accounts") == [("kept@x.test",)]
    assert applied_versions(fresh) == [1, 2, 3]


def test_apply_target_stops_at_a_version_and_restore_maps_missing_roles(
    cli: Cli, folder: Path, tmp_path: Path
):
    write_files(folder, {"004-index.sql": "create index concurrently o_idx on orders (amount);"})
    refused = cli("apply")
    partial = cli("apply", "--target", "002-orders")

    assert refused.exit_code != 0
    assert "The first refused file is 004-index.sql: `apply --target 3`" in refused.output
    assert partial.exit_code == 0, partial.output
    assert applied_versions(cli.dev) == applied_versions(cli.prod) == [1, 2]
    assert cli("apply", "--target", "3").exit_code == 0
    assert applied_versions(cli.prod) == [1, 2, 3]

    [backup, *_] = sorted((tmp_path / "backups").glob("app-prod-*.dump"), reverse=True)
    execute(cli.prod, "drop schema public cascade; create schema public")
    missing_role = cli("restore", str(backup), "-d", "app", "-e", "prod", "--map-role", "x")
    restored = cli("restore", str(backup), "-d", "app", "-e", "prod")

    assert missing_role.exit_code != 0 and "--map-role takes OLD=NEW" in missing_role.output
    assert restored.exit_code == 0, restored.output
    assert "with its owners and grants" in restored.output
    assert applied_versions(cli.prod) == [1, 2]
