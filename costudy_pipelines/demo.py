"""Run the main job once on a real Dagster instance and summarise what it did."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg
from dagster._core.execution.api import execute_run
from dagster._core.execution.job_execution_result import JobExecutionResult

from costudy_pipelines.sources.registry import load_registry


@dataclass
class DemoSummary:
    run_id: str
    success: bool
    seconds: float
    materialized: Counter[str] = field(default_factory=Counter)  # asset -> partitions
    records: Counter[str] = field(default_factory=Counter)  # asset -> records read
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # name, passed, severity
    failures: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            f"run {self.run_id}: {'SUCCESS' if self.success else 'FAILURE'} in {self.seconds:.1f}s",
            f"  assets materialized: {len(self.materialized)}",
        ]
        lines += [
            f"    - {key}" + (f" ({count} partitions)" if count > 1 else "")
            for key, count in sorted(self.materialized.items())
        ]
        lines += self.render_sources()
        passed = sum(1 for _, ok, _ in self.checks if ok)
        lines.append(f"  asset checks: {passed}/{len(self.checks)} passed")
        lines += [f"    ! {name} ({severity})" for name, ok, severity in self.checks if not ok]
        lines += [f"  failed: {failure}" for failure in self.failures]
        return "\n".join(lines)

    def render_sources(self) -> list[str]:
        """Every registered source and what its feeds read; a feed not synced stands out."""
        registry = load_registry()
        lines = [f"  sources synced (of {len(registry.sources)} registered):"]
        for source in registry:
            feeds = [
                f"{feed.asset} {self.records[feed.asset]:,} records"
                if feed.asset in self.materialized
                else f"{feed.asset} NOT SYNCED"
                for feed in source.feeds
            ]
            lines.append(f"    - {source.source.title}: " + ", ".join(feeds))
        return lines


def records_in(event: dg.DagsterEvent) -> int:
    """The records a materialization read: each partition's event carries its own day's."""
    records = event.step_materialization_data.materialization.metadata.get("records_in")
    return (records.value or 0) if isinstance(records, dg.IntMetadataValue) else 0


class StepProgress:
    """One line per asset as its step ends: partitions and records it materialized, its
    time, and how many of the run's assets are done (the run's own events, as they happen)."""

    def __init__(self, progress: Callable[[str], None], assets: int) -> None:
        self.progress, self.assets = progress, assets
        self.done: set[str] = set()
        self.partitions: Counter[str] = Counter()
        self.records: Counter[str] = Counter()
        self.started: dict[str, float] = {}

    def __call__(self, entry: dg.EventLogEntry) -> None:
        event, step = entry.dagster_event, entry.step_key
        if event is None or step is None:
            return
        if event.is_step_start:
            self.started[step] = entry.timestamp
        elif event.is_step_materialization:
            key = event.asset_key.to_user_string() if event.asset_key else step
            self.done.add(key)
            self.partitions[step] += 1
            self.records[step] += records_in(event)
        elif event.is_step_success and self.partitions[step]:
            self.report(step, entry, "done")
        elif event.is_step_failure:
            self.report(step, entry, "FAILED")

    def report(self, step: str, entry: dg.EventLogEntry, outcome: str) -> None:
        seconds = entry.timestamp - self.started.get(step, entry.timestamp)
        partitions = self.partitions[step]
        figures = f"{partitions} partitions, " if partitions > 1 else ""
        figures += f"{self.records[step]:,} records" if self.records[step] else ""
        self.progress(
            f"[{len(self.done)}/{self.assets}] {step} {outcome} in {seconds:.1f}s"
            + (f": {figures}" if figures else "")
        )


def main_job() -> dg.JobDefinition:
    """The project's main job: what a step's process rebuilds (dg.reconstructable) when the
    executor runs steps out of the run's process."""
    from costudy_pipelines.definitions import project_definitions

    return project_definitions().resolve_job_def("main")


def execute(
    instance: dg.DagsterInstance, run_id: str, run_config: dict[str, Any], tags: dict[str, str]
) -> dg.ExecuteInProcessResult | JobExecutionResult:
    """The main job as one run: in this process unless COSTUDY_EXECUTOR names another
    executor (then through it, steps in their own processes or on celery workers, as a
    launched run is). In-process is the demo's default: one run a person watches, where a
    crash would end the demo anyway, and on a two-core machine 7.7 x faster than a process
    per step (README, Performance)."""
    from costudy_pipelines.defs.executor import EXECUTOR_VAR, executor_choice

    job = main_job()
    if not os.environ.get(EXECUTOR_VAR) or executor_choice() == "in_process":
        return job.execute_in_process(
            run_config=run_config, instance=instance, tags=tags, run_id=run_id, raise_on_error=False
        )
    reconstructable = dg.reconstructable(main_job)
    run = instance.create_run_for_job(
        job_def=job,
        run_id=run_id,
        run_config=run_config,
        tags=tags,
        job_code_origin=reconstructable.get_python_origin(),
    )
    return execute_run(reconstructable, run, instance, raise_on_error=False)


def run_demo(first_day: date, last_day: date, progress: Callable[[str], None]) -> DemoSummary:
    """The main job in one run: every dated source over [first_day, last_day] (a single-run
    backfill, one sync session per day), the full-sync sources, the schemas and checks."""
    instance = dg.DagsterInstance.get()
    job = main_job()
    assets = len(job.asset_layer.selected_asset_keys)
    progress(f"running job 'main' ({assets} assets, partitions {first_day} .. {last_day})")
    started = time.monotonic()
    run_id = str(uuid.uuid4())  # known before the run starts, to listen to its events
    instance.add_event_listener(run_id, StepProgress(progress, assets))
    # WARNING: the progress display above replaces the assets' per-day INFO lines.
    run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    tags = {
        "dagster/asset_partition_range_start": first_day.isoformat(),
        "dagster/asset_partition_range_end": last_day.isoformat(),
    }
    result = execute(instance, run_id, run_config, tags)
    summary = DemoSummary(run_id, result.success, time.monotonic() - started)
    for event in result.all_events:
        if event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            key = materialization.asset_key.to_user_string()
            summary.materialized[key] += 1
            summary.records[key] += records_in(event)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            summary.checks.append((name, evaluation.passed, evaluation.severity.value))
        elif event.is_step_failure:
            error = event.step_failure_data.error
            summary.failures.append(f"{event.step_key}: {error.message.strip() if error else ''}")
    return summary
