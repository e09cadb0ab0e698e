"""Run the main job once on a real Dagster instance and summarise what it did."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg


@dataclass
class DemoSummary:
    run_id: str
    success: bool
    seconds: float
    materialized: list[str] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            f"run {self.run_id}: {'SUCCESS' if self.success else 'FAILURE'} in {self.seconds:.1f}s",
            f"  assets materialized: {len(self.materialized)}",
        ]
        lines += [f"    - {key}" for key in self.materialized]
        passed = sum(1 for _, ok in self.checks if ok)
        lines.append(f"  asset checks: {passed}/{len(self.checks)} passed")
        lines += [f"    ! {name}" for name, ok in self.checks if not ok]
        lines += [f"  failed: {failure}" for failure in self.failures]
        return "\n".join(lines)


def run_demo(progress: Callable[[str], None]) -> DemoSummary:
    from costudy_pipelines.definitions import defs

    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def("main")
    progress(f"running job 'main' ({len(job.asset_layer.selected_asset_keys)} assets)")
    started = time.monotonic()
    # INFO: the assets' own progress lines, without Dagster's per-event DEBUG stream.
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
    summary = DemoSummary(result.run_id, result.success, time.monotonic() - started)
    for event in result.all_events:
        if event.is_step_materialization:
            summary.materialized.append(event.asset_key.to_user_string())
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            summary.checks.append(
                (
                    f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}",
                    evaluation.passed,
                )
            )
        elif event.is_step_failure:
            error = event.event_specific_data.error
            summary.failures.append(f"{event.step_key}: {error.message.strip() if error else ''}")
    return summary
