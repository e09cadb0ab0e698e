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
import psutil
import pytest

from costudy_pipelines_tests.defs.workers.support import BIN, MODULE, Cluster, wait_for
from costudy_pipelines_tests.defs.workers.test_celery_workers import DAY, stall_one_payments_request
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
