"""The checks every source feed carries, on their skip path: with no materialization to look
at they warn and say why; nothing compared is never a pass."""

from __future__ import annotations

import re

import dagster as dg

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.defs._api_sources import ApiConnection
from costudy_pipelines.defs.resources import PostgresResource

ASSET = dg.AssetKey("whop_payments")
RUN_CHECKS = ("run_accounting", "reject_rate")


def test_run_checks_with_nothing_materialized_warn_and_say_why(warehouse_url: str) -> None:
    defs = project_definitions()
    [asset] = [
        a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) and ASSET in a.keys
    ]
    selected = [dg.AssetCheckKey(ASSET, name) for name in RUN_CHECKS]
    result = dg.materialize(
        [asset],  # its checks are evaluated in its op
        selection=dg.AssetSelection.checks(*selected),
        resources={
            "warehouse_db": PostgresResource(url=warehouse_url, env_var="WAREHOUSE_DB_URL"),
            # the asset is not run (only its checks are selected); its API is never called
            "whop": ApiConnection(settings={"api_key": "unused", "base_url": "http://127.0.0.1:9"}),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == set(RUN_CHECKS)
    for evaluation in evaluations.values():
        assert not evaluation.passed, evaluation.check_name
        assert evaluation.severity == dg.AssetCheckSeverity.WARN
        assert "never been materialized" in str(evaluation.metadata["skipped"].value)


def test_a_sync_on_an_unmigrated_warehouse_names_the_cause_and_the_remedy(
    fresh_db_url: str,
) -> None:
    """It failed with `relation "user_field_sources" does not exist`, naming no remedy."""
    defs = project_definitions()
    [asset] = [
        a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) and ASSET in a.keys
    ]
    result = dg.materialize(
        [asset],
        partition_key="2024-01-02",
        resources={
            "warehouse_db": PostgresResource(url=fresh_db_url, env_var="WAREHOUSE_DB_URL"),
            "whop": ApiConnection(settings={"api_key": "unused", "base_url": "http://127.0.0.1:9"}),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "WarehouseNotMigrated" in message
    database = fresh_db_url.rsplit("/", 1)[1]
    assert f"warehouse database '{database}'" in message and "is not migrated" in message
    # the first project table the sync touches, named (sync_log: the shape-drift record)
    assert re.search(r'relation "\w+" does not exist', message)
    assert "run `costudy migrate apply`" in message
