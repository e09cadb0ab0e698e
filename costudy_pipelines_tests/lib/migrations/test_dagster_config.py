"""Dagster loads any configuration the CLI accepts: environments reading variables of their own
get resources of their own."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from costudy_pipelines.defs.migrations import build_migration_defs
from costudy_pipelines.lib.migrations import load_config
from costudy_pipelines_tests.lib.migrations.support import (
    ACCOUNTS,
    applied_versions,
    write_config,
    write_files,
)


def test_config_with_its_own_variables_loads_and_materializes(
    databases, tmp_path: Path, folder: Path, monkeypatch
):
    write_files(folder, ACCOUNTS)
    dev, prod = databases.create(), databases.create()
    monkeypatch.setenv("BILLING_DEV_URL", dev)
    monkeypatch.setenv("BILLING_PROD_URL", prod)
    config = tmp_path / "billing.toml"
    config.write_text(
        write_config(tmp_path, folder)
        .read_text()
        .replace("PLATFORM_DB_URL", "BILLING_DEV_URL")
        .replace("PLATFORM_PROD_DB_URL", "BILLING_PROD_URL")
    )

    defs = build_migration_defs(load_config(config))
    result = dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources)

    assert sorted(defs.resources) == [
        "migrations_billing_dev_url_db",
        "migrations_billing_prod_url_db",
    ]
    assert result.success
    assert applied_versions(dev) == applied_versions(prod) == [1, 2, 3]
