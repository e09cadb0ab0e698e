"""A run whose process was killed with nobody left to report it (its code server gone too: a
restarted daemon container, a lost host) is failed by the daemon's run monitoring, and the pool
slot its step held is given back: other runs of that API go on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import dagster as dg
import httpx
import psutil
import psycopg
import pytest
from celery import Celery
from celery.result import AsyncResult

from costudy_pipelines.defs._run_monitoring import (
    HOST_TAG,
    HOST_VAR,
    STALE_VAR,
    host_id,
    tasks_key,
)
from costudy_pipelines.lib.loading.report import FAILED, RUNNING
from costudy_pipelines_tests.defs.workers.support import BIN, MODULE, Cluster, wait_for
from costudy_pipelines_tests.defs.workers.test_celery_workers import (
    DAY,
    stall_one_payments_request,
    step_starts,
    worker_running,
)
from costudy_pipelines_tests.harness import HANG_S

POOL = "whop_api"


@pytest.mark.slow
def test_a_killed_run_is_failed_by_run_monitoring_and_frees_its_pool_slot(
    project: tuple[dict[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = Cluster(*project)
    try:
        instance = cluster.instance(monkeypatch)
        stall_one_payments_request(cluster, seconds=600)  # the step holds its slot meanwhile
        cluster.start("daemon", "dagster-daemon", "run", "-m", MODULE)
        tags = json.dumps({"dagster/partition": DAY})
        job = ["-m", MODULE, "-j", "__ASSET_JOB", "-o", "whop_payments", "--tags", tags]
        launched = subprocess.run(
            [str(BIN / "dagster"), "job", "launch", *job],
            cwd=cluster.home,
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=HANG_S,
        )
        assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]

        slots = wait_for(
            "the step claims a whop_api slot",
            lambda: instance.event_log_storage.get_concurrency_info(POOL).claimed_slots,
            HANG_S,
        )
        run_id = slots[0].run_id
        started = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.RUN_START
        ).records
        run_process = psutil.Process(started[0].event_log_entry.dagster_event.pid)
        # The code server that started the run first (it would report its own child's death),
        # then the run and its step process: what a daemon's host restart leaves behind.
        code_server = run_process.parent()
        assert code_server is not None
        for process in [code_server, *run_process.children(recursive=True), run_process]:
            os.kill(process.pid, signal.SIGKILL)

        def failed() -> bool:
            run = instance.get_run_by_id(run_id)
            return run is not None and run.status == dg.DagsterRunStatus.FAILURE

        wait_for("run monitoring fails the run", failed, HANG_S)
        failure = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        message = failure.records[0].event_log_entry.message
        assert f"run process {run_process.pid}" in message and "is gone" in message, message
        wait_for(
            "its whop_api slot is free again",
            lambda: not instance.event_log_storage.get_concurrency_info(POOL).claimed_slots,
            HANG_S,
        )
    finally:
        cluster.stop_all()


def claimed_run(instance: dg.DagsterInstance) -> str:
    slots = wait_for(
        "the step claims a whop_api slot",
        lambda: instance.event_log_storage.get_concurrency_info(POOL).claimed_slots,
        HANG_S,
    )
    return slots[0].run_id


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    def failed() -> bool:
        run = instance.get_run_by_id(run_id)
        return run is not None and run.status == dg.DagsterRunStatus.FAILURE

    wait_for("run monitoring fails the run", failed, HANG_S)
    failure = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return failure.records[0].event_log_entry.message


@pytest.mark.slow
@pytest.mark.parametrize("host", ["this host", "another host"])
def test_a_killed_cli_run_is_failed_by_run_monitoring_and_frees_its_pool_slot(
    project: tuple[dict[str, str], Path], monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    """`dagster asset materialize` runs the run in the shell's process, not through the daemon's
    launcher: it is checked all the same, by its pid on the daemon's host, by its heartbeat from
    elsewhere (a run there stops beating when killed)."""
    cluster = Cluster(*project)
    try:
        instance = cluster.instance(monkeypatch)
        stall_one_payments_request(cluster, seconds=600)  # the step holds its slot meanwhile
        cluster.env[STALE_VAR] = "30"
        cluster.start("daemon", "dagster-daemon", "run", "-m", MODULE)
        if host == "another host":
            cluster.env[HOST_VAR] = "elsewhere"  # the CLI's, not the daemon's (started above)
        shell = cluster.launch("whop_payments", DAY)
        run_id = claimed_run(instance)
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.tags.get(HOST_TAG) == cluster.env.get(HOST_VAR, host_id())
        os.killpg(shell.pid, signal.SIGKILL)  # the shell's run and its step process
        shell.wait(timeout=60)

        message = failure_message(instance, run_id)
        if host == "this host":
            assert f"run process {shell.pid}" in message and "is gone" in message, message
        else:
            assert f"run process {shell.pid} on elsewhere is gone: no heartbeat" in message, message
        wait_for(
            "its whop_api slot is free again",
            lambda: not instance.event_log_storage.get_concurrency_info(POOL).claimed_slots,
            HANG_S,
        )
    finally:
        cluster.stop_all()


@pytest.mark.slow
def test_a_run_failed_by_monitoring_has_its_celery_step_revoked_before_its_slot_is_freed(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The orchestrator (a shell's `dagster asset materialize`) dies while its step runs on a
    worker: monitoring fails the run, the worker kills the step, and only then is the slot
    given back; the step commits nothing and reports nothing into the failed run."""
    cluster.start_worker("w1")
    cluster.wait_ready("w1")
    instance = cluster.instance(monkeypatch)
    # every attempt at the first payments page stalls past the client's 30 s read timeout: the
    # step cannot finish before its 6 attempts are spent (3 minutes), monitoring acts in ~20 s
    fault = {"kind": "latency", "path": "/api/v1/payments", "count": 6, "seconds": 600}
    admin = cluster.env["WHOP_API_URL"].removesuffix("/api/v1") + "/_sandbox/faults"
    httpx.post(admin, json=fault, timeout=10).raise_for_status()
    cluster.start("daemon", "dagster-daemon", "run", "-m", MODULE)
    shell = cluster.launch("whop_payments", DAY)
    worker_running(instance, cluster, "", "whop_payments")
    run_id = claimed_run(instance)
    step_pid = step_starts(instance, run_id)["whop_payments"][0]
    os.killpg(shell.pid, signal.SIGKILL)  # the orchestrator only: the worker runs on
    shell.wait(timeout=60)
    assert psutil.pid_exists(step_pid), "the step outlived its orchestrator"

    message = failure_message(instance, run_id)
    assert "its celery steps revoked: whop_payments (task " in message, message
    wait_for("the worker kills the revoked step", lambda: not psutil.pid_exists(step_pid), HANG_S)
    wait_for(
        "its whop_api slot is free again",
        lambda: not instance.event_log_storage.get_concurrency_info(POOL).claimed_slots,
        HANG_S,
    )
    tasks = instance.run_storage.get_cursor_values({tasks_key(run_id)})[tasks_key(run_id)]
    task = json.loads(tasks)["whop_payments"]
    app = Celery(broker=cluster.env["CELERY_BROKER_URL"], backend=cluster.env["CELERY_BACKEND_URL"])
    assert AsyncResult(task, app=app).state == "REVOKED"

    events = instance.get_records_for_run(run_id).records
    kinds = [(r.event_log_entry.dagster_event_type, r.event_log_entry.message) for r in events]
    revoked = next(i for i, (_, text) in enumerate(kinds) if "revoked the run's celery" in text)
    failed = next(i for i, (kind, _) in enumerate(kinds) if kind == dg.DagsterEventType.RUN_FAILURE)
    assert revoked < failed, "revoked before the run failed (its slots are freed after that)"
    assert not any(kind == dg.DagsterEventType.STEP_SUCCESS for kind, _ in kinds)
    with psycopg.connect(cluster.env["WAREHOUSE_DB_URL"]) as conn:
        sessions = conn.execute("select status from sync_log where run_id = %s", [run_id])
        statuses = {status for (status,) in sessions}
    # its session's RUNNING row (written before any data), never an outcome: nothing committed
    assert statuses <= {RUNNING, FAILED}, statuses


@pytest.mark.slow
def test_a_step_of_a_run_failed_meanwhile_commits_nothing(
    project: tuple[dict[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step its revocation never reached (a worker cut off from the broker) reads its day to
    the end and finds its run failed: the day's session is refused, nothing committed."""
    cluster = Cluster(*project)
    try:
        instance = cluster.instance(monkeypatch)
        stall_one_payments_request(cluster, seconds=600)  # answered after the 30 s read timeout
        shell = cluster.launch("whop_payments", DAY)
        run_id = claimed_run(instance)  # the step runs; its first request is stalled
        run = instance.get_run_by_id(run_id)
        assert run is not None
        instance.report_run_failed(run, "failed from outside, as run monitoring does")
        output, _ = shell.communicate(timeout=HANG_S)

        assert "its session for" in output and "is refused, nothing of it is committed" in output
        with psycopg.connect(cluster.env["WAREHOUSE_DB_URL"]) as conn:
            sessions = conn.execute("select status from sync_log where run_id = %s", [run_id])
            statuses = [status for (status,) in sessions]
            rows = conn.execute("select count(*) from whop_payments").fetchone()
        assert statuses == [FAILED], statuses
        assert rows == (0,)
    finally:
        cluster.stop_all()
