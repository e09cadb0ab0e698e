"""Each day partition of a multi-day run carries its own figures, as the Dagster instance
records them (what the UI's partition page and plots by partition read); a day that fails
shows failed while the days committed before it stay materialized."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dagster as dg
import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from costudy_pipelines.defs._source_assets import DAILY
from costudy_pipelines.sources.whop.defs import WhopResource
from costudy_pipelines_tests.sources.runs import run_assets
from costudy_pipelines_tests.sources.support import Sandbox

PAYMENTS = dg.AssetKey("whop_payments")
SELECTION = dg.AssetSelection.assets(PAYMENTS)
# metadata key -> sync_log column
SYNC_LOG_COLUMNS = {
    "records_in": "records_processed",
    "inserted": "inserted",
    "updated": "updated",
    "unchanged": "unchanged",
    "duplicates": "duplicates",
    "rejected": "rejected",
    "soft_deleted": "soft_deleted",
    "status": "status",
    "sync_log_id": "id",
}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def partition_figures(instance: dg.DagsterInstance) -> dict[str, dict[str, Any]]:
    """Each partition's latest materialization metadata, read back from the instance."""
    records = instance.fetch_materializations(PAYMENTS, limit=100).records
    figures: dict[str, dict[str, Any]] = {}
    for record in records:  # newest first
        materialization = record.asset_materialization
        assert materialization is not None and materialization.partition is not None
        metadata = {name: value.value for name, value in materialization.metadata.items()}
        figures.setdefault(materialization.partition, metadata)
    return figures


def sync_log(warehouse_url: str, run_id: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(warehouse_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "select * from sync_log where source = 'whop_payments' and run_id = %s",
            (run_id,),
        ).fetchall()
    return {row["partition_key"]: row for row in rows}


@pytest.mark.slow
def test_each_partition_records_its_own_days_figures(
    sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    run = run_assets(sandbox.first_day, sandbox.last_day, SELECTION, instance=instance)
    assert run.success, run.failures

    days = sync_log(sandbox.warehouse_url, run.run_id)
    figures = partition_figures(instance)
    assert sorted(figures) == sorted(days) and len(days) == 3
    assert len({row["records_processed"] for row in days.values()}) > 1, "days should differ"
    for key, row in days.items():
        own = {name: figures[key][name] for name in SYNC_LOG_COLUMNS}
        assert own == {name: row[column] for name, column in SYNC_LOG_COLUMNS.items()}, key
        assert figures[key]["dagster/row_count"] == row["records_processed"]
        assert figures[key]["run_partitions"] == 3


@pytest.mark.slow
def test_a_failing_day_fails_alone_and_the_days_before_it_stay_materialized(
    sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    first, third = sandbox.first_day, sandbox.first_day + timedelta(days=2)
    # What the first two days ask of Whop (an unrecorded run: same data, same requests).
    counted = run_assets(first, first + timedelta(days=1), SELECTION)
    assert counted.success, counted.failures
    requests = counted.metadata["whop_payments"]["requests"]
    # Every request after those fails: day 3's first page, past the retry cap.
    plan = {"faults": [{"kind": "error", "status": 502, "skip": requests}]}
    httpx.put(f"{sandbox.base_url('whop')}/_sandbox/faults", json=plan, timeout=10)
    impatient = WhopResource(
        api_key=dg.EnvVar("WHOP_API_KEY"),
        base_url=dg.EnvVar("WHOP_API_URL"),
        retry_attempts=2,
        retry_backoff_s=0.05,
    )

    run = run_assets(first, third, SELECTION, resources={"whop": impatient}, instance=instance)

    assert not run.success and "HTTP 502" in run.failures["whop_payments"]
    keys = [(first + timedelta(days=n)).isoformat() for n in range(3)]
    status = instance.get_status_by_partition(PAYMENTS, keys, DAILY)
    assert status == {
        keys[0]: dg.AssetPartitionStatus.MATERIALIZED,
        keys[1]: dg.AssetPartitionStatus.MATERIALIZED,
        keys[2]: dg.AssetPartitionStatus.FAILED,
    }
    days = sync_log(sandbox.warehouse_url, run.run_id)
    figures = partition_figures(instance)
    assert sorted(figures) == keys[:2]
    for key in keys[:2]:
        assert figures[key]["records_in"] == days[key]["records_processed"], key
        assert figures[key]["status"] == days[key]["status"], key
