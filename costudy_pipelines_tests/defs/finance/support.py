"""Running the finance, discrepancy and sync-health definitions against the test databases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.defs import discrepancies, finance, sync_health
from costudy_pipelines.defs import warehouse_views as views_module
from costudy_pipelines.defs._source_counts import CHECK_NAME
from costudy_pipelines_tests.defs.finance.copies import Copies

VIEW_ASSETS = {asset.key.to_user_string(): asset for asset in views_module.defs.assets}
RECONCILIATION_CHECKS = list(finance.defs.asset_checks)
# the source assets that compare counts (each evaluates its checks in its own op)
COUNT_CHECKED = [
    asset
    for asset in project_definitions().assets or []
    if isinstance(asset, dg.AssetsDefinition)
    and any(key.name == CHECK_NAME for key in asset.check_keys)
]
PEOPLE_CHECKS = list(discrepancies.defs.asset_checks)
REPORT = sync_health.sync_health_report


def run(
    dbs: Copies,
    instance: dg.DagsterInstance,
    definitions: Sequence,
    selection: dg.AssetSelection | None = None,
    partition_key: str | None = None,
    resources: dict[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    """The run of `definitions` (or of `selection`) with the databases of this test's copy and
    `resources` besides."""
    required = set().union(*(definition.required_resource_keys for definition in definitions))
    return dg.materialize(
        definitions,
        resources={**dbs.resources(required), **(resources or {})},
        instance=instance,
        selection=selection,
        partition_key=partition_key,
        raise_on_error=False,
    )


def evaluations(
    result: dg.ExecuteInProcessResult,
) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """Check evaluations of the run by (asset key, check name)."""
    return {
        (evaluation.asset_key.to_user_string(), evaluation.check_name): evaluation
        for evaluation in result.get_asset_check_evaluations()
    }


def metadata_value(evaluation: dg.AssetCheckEvaluation, key: str):
    return evaluation.metadata[key].value


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
