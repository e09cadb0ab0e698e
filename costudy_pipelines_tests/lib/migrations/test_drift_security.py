"""Security drift (RLS, policies, grants, owners, default privileges) made by hand in prod while
a promotion is pending: reported by `status`, `validate` and the Dagster drift check."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from costudy_pipelines_tests.lib.migrations.support import Cli, execute, query, write_files
from costudy_pipelines_tests.lib.migrations.test_dagster import PROD, Project, _checks


@pytest.fixture
def role(databases, pg_server_url: str) -> Iterator[str]:
    """A role of the test's own; dropped after the databases that refer to it."""
    name = f"mig_{uuid.uuid4().hex[:10]}"
    execute(pg_server_url, f"create role {name}")
    yield name
    databases.drop_all()
    execute(pg_server_url, f"drop role {name}")


def test_security_drift_in_prod_is_seen_while_a_promotion_is_pending(
    cli: Cli,
    role: str,
    tmp_path: Path,
    folder: Path,
):
    assert cli("apply").exit_code == 0
    write_files(folder, {"004-later.sql": "create table later (id int);"})
    assert cli("apply", "--env", "dev").exit_code == 0  # prod waits for the next promotion
    [(user,)] = query(cli.prod, "select current_user")
    execute(cli.prod, "alter table accounts enable row level security")
    execute(cli.prod, "create policy own_rows on orders using (account_id = 1)")
    execute(cli.prod, f"grant select on accounts to {role}")
    execute(cli.prod, f"alter table orders owner to {role}")
    execute(cli.prod, f"alter default privileges grant select on tables to {role}")

    status = cli("status")
    validate = cli("validate")
    checks = _checks(
        Project(tmp_path, folder, cli.dev, cli.prod).materialize(
            dg.AssetSelection.checks_for_assets(PROD)
        )
    )

    at = " (at version 3, the last both applied)"
    expected = [
        f"catalog: row level security public.accounts: exists only in prod: enabled{at}",
        "catalog: policy public.orders.own_rows: exists only in prod: "
        f"permissive for all to public using ((account_id = 1)){at}",
        f"catalog: grant table public.accounts: exists only in prod: {role}=r/{user} ",
        f"catalog: owner table public.orders: differs: dev '{user}', prod '{role}'{at}",
        f"catalog: default privileges for {user} on tables: exists only in prod: {role}=r/{user} ",
    ]
    assert status.exit_code == 1 and validate.exit_code == 1
    for line in expected:
        assert line in status.output
        assert f"problem: app dev → prod: drift {line}" in validate.output
    drift = checks[("app_schema_prod", "environments_agree")]
    rows = {row.data["object"]: row.data["detail"] for row in drift.metadata["drift"].value.records}
    assert not drift.passed
    assert rows["row level security public.accounts"] == f"exists only in prod: enabled{at}"
    assert rows["owner table public.orders"] == f"differs: dev '{user}', prod '{role}'{at}"
    assert {
        "policy public.orders.own_rows",
        "grant table public.accounts",
        f"default privileges for {user} on tables",
    } <= rows.keys()
