"""The run launcher of dagster.yaml: Dagster's default one, plus the health check run monitoring
needs. Without it, a run whose process was killed (OOM, a host reboot) stays STARTED for ever
and keeps its pool slots: two such crashes block every run of that API's pool.

Every run is checked, whatever launched it (the daemon, the UI, `dagster asset materialize`,
`dg launch`, `execute_in_process`): the project's executor (defs/executor.py) marks the run
from inside the run's own process when it starts executing, with
- `costudy/run_host`: the host it executes on (COSTUDY_HOST_ID, else the hostname: compose
  gives the daemon a fixed one, `costudy-daemon`, so a recreated daemon container recognises
  the runs it launched before), and
- a heartbeat, a timestamp in the instance's key-value store, renewed every HEARTBEAT_S.

The daemon's check: a run on its own host is alive while the process that started it (the
RUN_START event's pid, not a reused one) is; a run on another host while its heartbeat is
younger than COSTUDY_HEARTBEAT_STALE_S (default 120 s, which must exceed the clocks' skew).

A run the check fails first has its celery steps revoked (the executor records each step's
task id beside the heartbeat): workers kill them before Dagster frees the run's pool slots
(`free_slots_after_run_end_seconds` after the failure), so no step of a failed run goes on
calling an API or commits beside the run's retry.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus

from costudy_pipelines.lib.settings import positive_int_setting

HOST_TAG = "costudy/run_host"
HOST_VAR = "COSTUDY_HOST_ID"
STALE_VAR = "COSTUDY_HEARTBEAT_STALE_S"
HEARTBEAT_S = 10.0
DEFAULT_STALE_S = 120
CLOCK_SLACK_S = 1.0  # a process's start time and the event's timestamp come from two clocks


def host_id() -> str:
    """This host as runs' tags name it."""
    return os.environ.get(HOST_VAR) or socket.gethostname()


def stale_after_s() -> int:
    return positive_int_setting(STALE_VAR) or DEFAULT_STALE_S


def heartbeat_key(run_id: str) -> str:
    return f"costudy/heartbeat/{run_id}"


def tasks_key(run_id: str) -> str:
    return f"costudy/celery_tasks/{run_id}"


def process_alive(pid: int, started_by: float) -> bool:
    """Whether `pid` is a live process that existed at `started_by` (a reused pid is not)."""
    import psutil  # the monitoring sensor's, not every run's import

    try:
        process = psutil.Process(pid)
        return (
            process.create_time() <= started_by + CLOCK_SLACK_S
            and process.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.NoSuchProcess:
        return False


def last_heartbeat(instance: dg.DagsterInstance, run_id: str) -> float | None:
    key = heartbeat_key(run_id)
    value = instance.run_storage.get_cursor_values({key}).get(key)
    return float(value) if value else None


@contextmanager
def heartbeat(instance: dg.DagsterInstance, run_id: str) -> Iterator[None]:
    """Mark the run as executing here and beat until the block ends (the run's process only)."""
    instance.add_run_tags(run_id, {HOST_TAG: host_id()})
    key = heartbeat_key(run_id)
    stop = threading.Event()

    def beat() -> None:
        instance.run_storage.set_cursor_values({key: repr(time.time())})

    def beating() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                beat()
            except Exception:  # a database blip: the next beat retries; staleness allows for it
                continue

    beat()
    thread = threading.Thread(target=beating, name=f"heartbeat {run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=HEARTBEAT_S)


def record_celery_task(instance: dg.DagsterInstance, run_id: str, step: str, task: str) -> None:
    """Remember a step's celery task id, for revoking it if the run is failed from outside (the
    orchestrator submits steps one at a time: no concurrent writer)."""
    key = tasks_key(run_id)
    tasks = json.loads(instance.run_storage.get_cursor_values({key}).get(key) or "{}")
    tasks[step] = task
    instance.run_storage.set_cursor_values({key: json.dumps(tasks)})


def revoke_celery_tasks(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """Revoke (SIGKILL wherever they run, drop wherever they wait) the run's celery steps; what
    was done, for the run's failure message."""
    key = tasks_key(run.run_id)
    tasks: dict[str, str] = json.loads(
        instance.run_storage.get_cursor_values({key}).get(key) or "{}"
    )
    if not tasks:
        return ""
    from costudy_pipelines.defs.executor import revoke_tasks  # celery only where it is used

    steps = ", ".join(f"{step} (task {task})" for step, task in sorted(tasks.items()))
    if not revoke_tasks(list(tasks.values())):
        message = f"run monitoring could not reach the broker to revoke the run's steps: {steps}"
        instance.report_engine_event(message, run)
        return f"; its celery steps NOT revoked (broker out of reach): {steps}"
    instance.report_engine_event(f"run monitoring revoked the run's celery steps: {steps}", run)
    return f"; its celery steps revoked: {steps}"


class MonitoredRunLauncher(dg.DefaultRunLauncher):
    """Launches like the default launcher; says whether any run's process still lives."""

    def launch_run(self, context: LaunchRunContext) -> None:
        self._instance.add_run_tags(context.dagster_run.run_id, {HOST_TAG: host_id()})
        super().launch_run(context)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        result = self._health(run)
        if result.status == WorkerStatus.FAILED:
            revoked = revoke_celery_tasks(self._instance, run)
            result = CheckRunHealthResult(WorkerStatus.FAILED, (result.msg or "") + revoked)
        return result

    def _health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        host = run.tags.get(HOST_TAG)
        started = self._instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
        ).records
        event = started[0].event_log_entry.dagster_event if started else None
        if event is None or event.pid is None:  # not started yet: start_timeout_seconds bounds it
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run process not started yet")
        if host == host_id():
            if process_alive(event.pid, started[0].timestamp):
                return CheckRunHealthResult(WorkerStatus.RUNNING, f"run process {event.pid} alive")
            gone = f"run process {event.pid} on {host} is gone (killed or crashed)"
            return CheckRunHealthResult(WorkerStatus.FAILED, gone)
        # Another host (or none recorded yet): its heartbeat, else the start as the last sign.
        beat = last_heartbeat(self._instance, run.run_id)
        silent_s = time.time() - (beat if beat is not None else started[0].timestamp)
        if silent_s <= stale_after_s():
            return CheckRunHealthResult(
                WorkerStatus.RUNNING, f"run process {event.pid} on {host} beat {silent_s:.0f}s ago"
            )
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run process {event.pid} on {host or 'an unrecorded host'} is gone: no heartbeat "
            f"for {silent_s:.0f}s (more than {STALE_VAR}={stale_after_s()})",
        )
