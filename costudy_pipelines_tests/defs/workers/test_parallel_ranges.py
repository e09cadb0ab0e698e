"""A backfill split into ranges (COSTUDY_BACKFILL_DAYS_PER_RUN) runs its ranges side by side on
the workers, and together they stay within the API's published limit: each step takes its
share of the limit (its pool's slots), the sandbox enforces the limit and counts refusals."""

from __future__ import annotations

import dagster as dg
import httpx
import pytest

from costudy_pipelines.defs._source_assets import BACKFILL_DAYS_VAR
from costudy_pipelines_tests.defs.workers.support import MODULE, Cluster, wait_for
from costudy_pipelines_tests.defs.workers.test_celery_workers import (
    BACKFILL_DAYS,
    launch_backfill,
    start_two,
)
from costudy_pipelines_tests.harness import HANG_S

POOL = "whop_api"
# Whop's published v2 limit, enforced by the sandbox: 100 requests / 10 s, then 60 s refused.
PUBLISHED = {"max_requests": 100, "window_seconds": 10.0, "cooldown_seconds": 60.0}
# Five attempts at the first payments page stall past the client's 30 s read timeout (the
# sixth is answered): whichever range comes first is held there, up to 150 s, while the other
# starts; neither can fail (six attempts allowed).
STALLS = {"kind": "latency", "path": "/api/v1/payments", "count": 5, "seconds": 600}


@pytest.mark.slow
def test_ranges_of_a_backfill_run_side_by_side_within_the_api_limit(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.env[BACKFILL_DAYS_VAR] = "2"
    admin = cluster.env["WHOP_API_URL"].removesuffix("/api/v1") + "/_sandbox"
    plan = {"rate_limit": PUBLISHED, "faults": [STALLS]}
    httpx.put(f"{admin}/faults", json=plan, timeout=10).raise_for_status()
    cluster.start("daemon", "dagster-daemon", "run", "-m", MODULE)
    start_two(cluster)
    instance = cluster.instance(monkeypatch)
    backfill = launch_backfill(cluster, "whop_payments", BACKFILL_DAYS)

    def both_ranges_hold_a_slot() -> set[str] | None:
        claimed = instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
        runs = {slot.run_id for slot in claimed}
        return runs if len(runs) == 2 else None

    overlapping = wait_for("both ranges hold a slot at once", both_ranges_hold_a_slot, HANG_S)

    def finished_runs() -> list[dg.DagsterRun] | None:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill}))
        done = len(runs) == 2 and all(run.is_finished for run in runs)
        return list(runs) if done else None

    runs = wait_for("the backfill's two runs finish", finished_runs, HANG_S)
    assert {run.run_id for run in runs} == overlapping
    assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
    for run in runs:
        logs = instance.all_logs(run.run_id)
        assert any("this step takes 1/2 of its API's limit" in entry.message for entry in logs)
    answers = httpx.get(f"{admin}/requests", timeout=10).json()
    payments = [entry for entry in answers if entry["path"] == "/api/v1/payments"]
    assert payments and not [entry for entry in answers if entry["status"] == 429], answers
