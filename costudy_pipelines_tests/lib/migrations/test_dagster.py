"""The schema assets and their checks, materialized in process against real test databases."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from costudy_pipelines.defs.migrations import build_migration_defs, schema_asset_key
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.migrations import load_config
from costudy_pipelines_tests.lib.migrations.support import (
    ACCOUNTS,
    applied_versions,
    execute,
    write_config,
    write_files,
)

DEV, PROD = schema_asset_key("app", "dev"), schema_asset_key("app", "prod")


class Project:
    """The migration assets of a one-database config, with dev and prod test databases."""

    def __init__(self, tmp_path: Path, folder: Path, dev: str, prod: str) -> None:
        self.folder, self.dev, self.prod = folder, dev, prod
        defs = build_migration_defs(load_config(write_config(tmp_path, folder)))
        self.definitions = [*defs.assets, *defs.asset_checks]
        self.resources = {
            "platform_db": PostgresResource(url=dev, env_var="PLATFORM_DB_URL"),
            "platform_prod_db": PostgresResource(url=prod, env_var="PLATFORM_PROD_DB_URL"),
        }

    def materialize(self, selection: dg.AssetSelection | None = None) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            self.definitions, resources=self.resources, selection=selection, raise_on_error=False
        )


@pytest.fixture
def project(databases, tmp_path: Path, folder: Path) -> Project:
    return Project(tmp_path, folder, databases.create(), databases.create())


def _checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def _metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return event.materialization.metadata


def test_materializing_applies_dev_then_prod_with_timings_and_passing_checks(
    project: Project, tmp_path: Path
):
    write_files(project.folder, ACCOUNTS)

    result = project.materialize()

    assert result.success
    dev = _metadata(result, DEV)
    assert dev["applied_now"].value == 3 and dev["version"].value == 3
    assert [row.data["file"] for row in dev["timings"].value.records] == [
        "001-accounts.sql",
        "002-orders.sql",
        "003-order-total.sql",
    ]
    assert all(row.data["ms"] >= 0 for row in dev["timings"].value.records)
    prod = _metadata(result, PROD)
    assert Path(prod["backup"].value).parent == tmp_path / "backups"
    assert dev["backup"].value == "none"
    assert applied_versions(project.prod) == [1, 2, 3]
    checks = _checks(result)
    assert sorted(checks) == [
        ("app_schema_dev", "no_edited_files"),
        ("app_schema_dev", "up_to_date"),
        ("app_schema_prod", "environments_agree"),
        ("app_schema_prod", "no_edited_files"),
        ("app_schema_prod", "up_to_date"),
    ]
    assert all(check.passed for check in checks.values())


def test_manual_change_in_prod_fails_the_drift_check_with_the_difference(project: Project):
    write_files(project.folder, ACCOUNTS)
    assert project.materialize().success
    execute(project.prod, "alter table orders alter column amount type numeric(20, 4)")

    result = project.materialize(dg.AssetSelection.checks_for_assets(PROD))

    drift = _checks(result)[("app_schema_prod", "environments_agree")]
    assert not drift.passed
    assert drift.metadata["differences"].value == 1
    [row] = drift.metadata["drift"].value.records
    assert row.data == {
        "kind": "catalog",
        "object": "column public.orders.amount",
        "detail": "differs: dev 'numeric(12,2) not null', prod 'numeric(20,4) not null'",
    }


def test_edited_file_fails_the_materialization_and_the_check(project: Project):
    write_files(project.folder, ACCOUNTS)
    assert project.materialize().success
    write_files(project.folder, {"002-orders.sql": ACCOUNTS["002-orders.sql"] + "-- edited\n"})
    write_files(project.folder, {"004-later.sql": "create table later (id int);"})

    materialized = project.materialize(dg.AssetSelection.assets(DEV))
    checked = project.materialize(dg.AssetSelection.checks_for_assets(DEV))

    assert not materialized.success
    [failure] = [e for e in materialized.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "002-orders.sql was edited after it was applied" in str(failure.event_specific_data)
    assert applied_versions(project.dev) == [1, 2, 3]
    edited = _checks(checked)[("app_schema_dev", "no_edited_files")]
    up_to_date = _checks(checked)[("app_schema_dev", "up_to_date")]
    assert not edited.passed and edited.metadata["edited"].value == "002-orders.sql"
    assert not up_to_date.passed and up_to_date.metadata["pending"].value == "004-later.sql"


def test_empty_folder_materializes_and_passes(project: Project):
    (project.folder / ".gitkeep").touch()

    result = project.materialize()

    assert result.success
    assert _metadata(result, DEV)["files"].value == 0
    assert all(check.passed for check in _checks(result).values())


def test_project_definitions_have_a_schema_asset_per_database_and_environment():
    from costudy_pipelines.definitions import project_definitions

    keys = project_definitions().resolve_asset_graph().get_all_asset_keys()
    for database in ("platform", "warehouse"):
        assert {schema_asset_key(database, "dev"), schema_asset_key(database, "prod")} <= keys
        prod = project_definitions().resolve_assets_def(schema_asset_key(database, "prod"))
        assert (
            schema_asset_key(database, "dev") in prod.asset_deps[schema_asset_key(database, "prod")]
        )
