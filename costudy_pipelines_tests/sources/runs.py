"""Runs of the product's own assets (costudy_pipelines.definitions) as Dagster executes them:
one run over a range of day partitions, the way `costudy demo` and a single-run backfill do."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.defs._source_assets import SOURCE_GROUP

SOURCES_AND_USERS = dg.AssetSelection.groups(SOURCE_GROUP) | dg.AssetSelection.assets("users")
# Only what the tests look at, without Dagster's per-event DEBUG stream.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class Run:
    run_id: str
    success: bool
    materialized: dict[str, set[str | None]] = field(default_factory=lambda: defaultdict(set))
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset -> last values
    # asset -> its observations in order: (partition, metadata); the run's own figures are the
    # one without a partition
    observed: dict[str, list[tuple[str | None, dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)  # name -> passed, severity
    failures: dict[str, str] = field(default_factory=dict)  # step -> error message

    def run_figures(self, asset: str) -> dict[str, Any]:
        """What the run recorded about itself for `asset` (not about any one day)."""
        (figures,) = [metadata for partition, metadata in self.observed[asset] if partition is None]
        return figures

    def failed_checks(self, severity: str) -> set[str]:
        return {name for name, (ok, level) in self.checks.items() if not ok and level == severity}


def run_assets(
    first: date,
    last: date,
    selection: dg.AssetSelection = SOURCES_AND_USERS,
    *,
    resources: dict[str, Any] | None = None,
    run_config: dict[str, Any] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> Run:
    """One run of `selection` over the day partitions [first, last] (a single-run backfill);
    `resources` replace the product's resources of the same key; `instance` records the run
    (an ephemeral one by default)."""
    job_defs = dg.Definitions(
        assets=project_definitions().assets,
        asset_checks=project_definitions().asset_checks,
        resources={**(project_definitions().resources or {}), **(resources or {})},
        jobs=[dg.define_asset_job("sync", selection=selection)],
    )
    result = job_defs.resolve_job_def("sync").execute_in_process(
        run_config={**QUIET, **(run_config or {})},
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        raise_on_error=False,
        instance=instance,
    )
    return summarise(result)


def summarise(result: dg.ExecuteInProcessResult) -> Run:
    run = Run(result.run_id, result.success)
    for event in result.all_events:
        if event.is_step_materialization:
            materialization = event.event_specific_data.materialization
            asset = event.asset_key.to_user_string()
            run.materialized[asset].add(materialization.partition)
            run.metadata[asset] = {
                name: value.value for name, value in materialization.metadata.items()
            }
        elif event.event_type == dg.DagsterEventType.ASSET_OBSERVATION:
            observation = event.event_specific_data.asset_observation
            run.observed[event.asset_key.to_user_string()].append(
                (
                    observation.partition,
                    {name: value.value for name, value in observation.metadata.items()},
                )
            )
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            run.checks[name] = (evaluation.passed, evaluation.severity.value)
        elif event.is_step_failure:
            error = event.event_specific_data.error
            run.failures[event.step_key] = error.message if error else ""
    return run
