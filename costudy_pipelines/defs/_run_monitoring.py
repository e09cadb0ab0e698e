"""The run launcher of dagster.yaml: Dagster's default one, plus the health check run monitoring
needs. Without it, a run whose process was killed (OOM, a host reboot) stays STARTED for ever
and keeps its pool slots: two such crashes block every run of that API's pool.

The check is by process id on the launching host: the daemon launches queued runs from its own
code processes (workspace.yaml), so the run process lives beside it. A run launched elsewhere
(another host, or `dagster asset materialize` in a shell) is not checked.
"""

from __future__ import annotations

import socket

import dagster as dg
import psutil
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus

HOST_TAG = "costudy/run_host"
CLOCK_SLACK_S = 1.0  # a process's start time and the event's timestamp come from two clocks


def process_alive(pid: int, started_by: float) -> bool:
    """Whether `pid` is a live process that existed at `started_by` (a reused pid is not)."""
    try:
        process = psutil.Process(pid)
        return (
            process.create_time() <= started_by + CLOCK_SLACK_S
            and process.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.NoSuchProcess:
        return False


class MonitoredRunLauncher(dg.DefaultRunLauncher):
    """Launches like the default launcher; says whether a launched run's process still lives."""

    def launch_run(self, context: LaunchRunContext) -> None:
        self._instance.add_run_tags(context.dagster_run.run_id, {HOST_TAG: socket.gethostname()})
        super().launch_run(context)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        host, here = run.tags.get(HOST_TAG), socket.gethostname()
        if host != here:
            return CheckRunHealthResult(
                WorkerStatus.RUNNING, f"run launched on {host or 'no launcher'}, not checked here"
            )
        started = self._instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
        ).records
        event = started[0].event_log_entry.dagster_event if started else None
        if event is None or event.pid is None:  # not started yet: start_timeout_seconds bounds it
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run process not started yet")
        if process_alive(event.pid, started[0].timestamp):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run process {event.pid} alive")
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run process {event.pid} on {host} is gone (killed or crashed)"
        )
