"""Runs on dagster-celery workers: every step in a worker process, both workers busy; a worker
SIGKILLed mid-step loses nothing (another worker re-runs the step, the tables equal a clean
run's); a step no worker finishes fails its run in bounded time; a backfill launched as the UI
does becomes ranges of days, one run each, on the workers."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter

import dagster as dg
import httpx
import psycopg
import pytest

from costudy_pipelines.defs._source_assets import BACKFILL_DAYS_VAR
from costudy_pipelines_tests.defs.workers.support import BIN, MODULE, Cluster, wait_for
from costudy_pipelines_tests.harness import HANG_S

DAY = "2024-01-02"
RECENT_RUNS = 10
WHOP = "whop_users,whop_memberships,whop_payments"
TABLES = ("whop_users", "whop_memberships", "whop_payments")
STALL_S = 25  # one payments request stalls this long: time to kill the worker serving it


def step_starts(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[int]]:
    """step key -> the pid of each process that started it (a re-run step has two)."""
    starts: dict[str, list[int]] = {}
    for record in instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.STEP_START
    ).records:
        event = record.event_log_entry.dagster_event
        assert event is not None and event.step_key is not None
        starts.setdefault(event.step_key, []).append(event.pid)
    return starts


def latest_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    runs = instance.get_runs(limit=1)
    assert runs, "no run recorded"
    return runs[0]


def fingerprint(url: str) -> dict[str, Counter[tuple[str, bytes, bool]]]:
    """Each table's rows as (key, content hash, live): equal for equal contents, a duplicate
    counts twice."""
    with psycopg.connect(url) as conn:
        return {
            table: Counter(
                (key, bytes(content), live)
                for key, content, live in conn.execute(
                    f"select external_id, content_hash, deleted_at is null from {table}"
                )
            )
            for table in TABLES
        }


def start_two(cluster: Cluster) -> None:
    for name in ("w1", "w2"):
        cluster.start_worker(name)
    for name in ("w1", "w2"):
        cluster.wait_ready(name)


@pytest.mark.slow
def test_two_workers_run_every_step_of_a_partitioned_job_with_its_checks(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_two(cluster)
    cluster.materialize(WHOP, DAY)

    instance = cluster.instance(monkeypatch)
    dagster_run = latest_run(instance)
    assert dagster_run.status == dg.DagsterRunStatus.SUCCESS
    starts = step_starts(instance, dagster_run.run_id)
    # each feed's checks are evaluated in its asset's step, on whichever worker took it
    assert sorted(starts) == sorted(TABLES), f"the run's steps: {sorted(starts)}"
    evaluated = instance.get_records_for_run(
        dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    checked = {record.event_log_entry.step_key for record in evaluated}
    assert checked == set(TABLES), f"checks evaluated in {sorted(checked)}"
    by_worker = {name: cluster.pids(name) for name in ("w1", "w2")}
    for step, pids in starts.items():
        assert len(pids) == 1, f"{step} started {len(pids)} times"
        assert any(pids[0] in worker for worker in by_worker.values()), (
            f"{step} started in pid {pids[0]}, not in a worker process {by_worker}"
        )
    took = {
        name: [s for s, p in starts.items() if p[0] in pids] for name, pids in by_worker.items()
    }
    assert all(took.values()), f"both workers took steps: {took}"


def stall_one_payments_request(cluster: Cluster, seconds: float = STALL_S) -> None:
    """The next payments request (only that one) answers after `seconds`."""
    fault = {"kind": "latency", "path": "/api/v1/payments", "count": 1, "seconds": seconds}
    admin = cluster.env["WHOP_API_URL"].removesuffix("/api/v1") + "/_sandbox/faults"
    httpx.post(admin, json=fault, timeout=10).raise_for_status()


def worker_running(instance: dg.DagsterInstance, cluster: Cluster, after: str, step: str) -> str:
    """The worker whose process started `step` in a run newer than run `after` (not only the
    newest: the daemon's own automation may launch a run right after the test's)."""

    def probe() -> str | None:
        for run in instance.get_runs(limit=RECENT_RUNS):
            if run.run_id == after:
                return None
            pids = set(step_starts(instance, run.run_id).get(step, []))
            found = next((name for name in cluster.workers if pids & cluster.pids(name)), None)
            if found:
                return found
        return None

    return wait_for(f"{step} starts on a worker", probe, HANG_S)


@pytest.mark.slow
def test_a_worker_killed_mid_step_loses_nothing(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_two(cluster)
    cluster.materialize(WHOP, DAY)  # the clean run
    instance = cluster.instance(monkeypatch)
    clean_run = latest_run(instance).run_id
    clean = fingerprint(cluster.env["WAREHOUSE_DB_URL"])
    assert all(clean.values()), "the clean run stored rows in every table"

    stall_one_payments_request(cluster)
    run = cluster.launch(WHOP, DAY)
    victim = worker_running(instance, cluster, clean_run, "whop_payments")
    cluster.kill(victim)
    output, _ = run.communicate(timeout=HANG_S)
    assert run.returncode == 0, output[-5000:]

    rerun = latest_run(instance)
    assert rerun.status == dg.DagsterRunStatus.SUCCESS
    survivor = ({"w1", "w2"} - {victim}).pop()
    starts = step_starts(instance, rerun.run_id)["whop_payments"]
    assert len(starts) == 2 and starts[1] in cluster.pids(survivor), (
        f"whop_payments started by {victim}, then re-run by {survivor}: {starts}"
    )
    assert fingerprint(cluster.env["WAREHOUSE_DB_URL"]) == clean


@pytest.mark.slow
def test_a_step_no_worker_finishes_fails_the_run_naming_step_and_worker(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.start_worker("w1")
    cluster.wait_ready("w1")
    instance = cluster.instance(monkeypatch)
    cluster.env["COSTUDY_STEP_TIMEOUT_S"] = "60"  # the orchestrator's bound; imports take ~15 s
    stall_one_payments_request(cluster)
    run = cluster.launch("whop_payments", DAY)
    worker_running(instance, cluster, "", "whop_payments")
    cluster.kill("w1")  # the only worker: the step goes back to a queue nobody serves
    output, _ = run.communicate(timeout=HANG_S)

    assert run.returncode != 0
    assert latest_run(instance).status == dg.DagsterRunStatus.FAILURE
    assert "step whop_payments had no result within 60s (COSTUDY_STEP_TIMEOUT_S)" in output
    assert re.search(r"last worker on it: w1@\S+ \(pid \d+\)", output), output[-3000:]


LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
BACKFILL_DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]


def launch_backfill(cluster: Cluster, asset: str, days: list[str]) -> str:
    """An asset backfill, as the UI's *Materialize* → partitions launches it (GraphQL)."""
    params = {"assetSelection": [{"path": [asset]}], "partitionNames": days}
    variables = json.dumps({"params": params})
    output = cluster.home / "backfill.json"  # stdout has the code server's log lines too
    query = ["-t", LAUNCH_BACKFILL, "-v", variables, "-o", str(output)]
    answer = subprocess.run(
        [str(BIN / "dagster-graphql"), "-m", MODULE, *query],
        cwd=cluster.home,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    launched = json.loads(output.read_text())["data"]["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


@pytest.mark.slow
def test_a_backfill_is_split_into_ranges_that_run_on_the_workers(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.env[BACKFILL_DAYS_VAR] = "2"
    cluster.start("daemon", "dagster-daemon", "run", "-m", MODULE)
    start_two(cluster)
    instance = cluster.instance(monkeypatch)
    backfill = launch_backfill(cluster, "whop_payments", BACKFILL_DAYS)

    def finished_runs() -> list[dg.DagsterRun] | None:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill}))
        done = len(runs) == 2 and all(run.is_finished for run in runs)
        return runs if done else None

    runs = wait_for("the backfill's two runs finish", finished_runs, HANG_S)
    assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
    ranges = {
        (
            run.tags["dagster/asset_partition_range_start"],
            run.tags["dagster/asset_partition_range_end"],
        )
        for run in runs
    }
    assert ranges == {("2024-01-01", "2024-01-02"), ("2024-01-03", "2024-01-04")}
    workers = cluster.pids("w1") | cluster.pids("w2")
    for run in runs:
        starts = step_starts(instance, run.run_id)
        assert "whop_payments" in starts
        assert {pid for pids in starts.values() for pid in pids} <= workers
    with psycopg.connect(cluster.env["WAREHOUSE_DB_URL"]) as conn:
        sessions = conn.execute(
            "select partition_key, run_id from sync_log where source = 'whop_payments'"
        ).fetchall()
    assert sorted(key for key, _ in sessions) == BACKFILL_DAYS
    assert {run_id for _, run_id in sessions} == {run.run_id for run in runs}
