"""Each day partition of a multi-day run carries its own figures and only those, as the
Dagster instance records them (what the UI's partition page and plots by partition read); the
run's figures are the run's; each day shows as it commits; a day that fails shows failed while
the days committed before it stay materialized."""

from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from typing import Any

import dagster as dg
import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.defs._source_assets import (
    SyncConfig,
    SyncEvent,
    daily_partitions,
    feed_asset,
    sync_daily,
)
from costudy_pipelines.sources.registry import load_registry
from costudy_pipelines.sources.whop.client import open_feed
from costudy_pipelines_tests.sources.runs import run_assets
from costudy_pipelines_tests.sources.support import Sandbox, impatient_whop

PAYMENTS = dg.AssetKey("whop_payments")
# the run's figures, which no day's materialization carries
RUN_ONLY = {"run_partitions", "run_duration_s", "requests", "retries", "bytes_received", "waited_s"}
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
        # nothing of the run's on a day: no run totals, no HTTP counters
        assert not RUN_ONLY & set(figures[key]), key

    # the run's figures: one observation of the asset without a partition
    run_figures = run.run_figures("whop_payments")
    assert run_figures["run_partitions"] == 3
    assert run_figures["requests"] >= len(days)  # a page per day at least
    assert run_figures["run_duration_s"] >= 0
    (stored,) = [
        record.asset_observation
        for record in instance.fetch_observations(PAYMENTS, limit=100).records
        if record.asset_observation is not None and record.asset_observation.partition is None
    ]
    assert stored.metadata["requests"].value == run_figures["requests"]


@pytest.mark.slow
def test_a_failing_day_fails_alone_and_the_days_before_it_stay_materialized(
    sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    first, third = sandbox.first_day, sandbox.first_day + timedelta(days=2)
    # What the first two days ask of Whop (an unrecorded run: same data, same requests).
    counted = run_assets(first, first + timedelta(days=1), SELECTION)
    assert counted.success, counted.failures
    requests = counted.run_figures("whop_payments")["requests"]
    # Every request after those fails: day 3's first page, past the retry cap.
    plan = {"faults": [{"kind": "error", "status": 502, "skip": requests}]}
    httpx.put(f"{sandbox.base_url('whop')}/_sandbox/faults", json=plan, timeout=10)
    impatient = impatient_whop(2)

    run = run_assets(first, third, SELECTION, resources={"whop": impatient}, instance=instance)

    assert not run.success and "HTTP 502" in run.failures["whop_payments"]
    keys = [(first + timedelta(days=n)).isoformat() for n in range(3)]
    status = instance.get_status_by_partition(
        PAYMENTS, keys, daily_partitions(load_registry().config)
    )
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


@pytest.mark.slow
def test_each_day_shows_as_it_commits_while_the_run_goes_on(
    sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    """Each day is on the instance (an observation with its figures) as soon as its session
    commits, before the next day's session commits: not all at once when the step ends."""
    registry = load_registry()
    source = registry.source("whop")
    feed = registry.feed("whop_payments")
    # as each day's observation comes out of sync_daily: (its day, the run's days the instance
    # shows already, the run's days committed in the warehouse, the days materialized)
    seen: list[tuple[str | None, list[str], list[str], list[str]]] = []

    @feed_asset(source, feed, kinds={"whop"}, resource_keys={"whop"})
    def whop_payments(context: dg.AssetExecutionContext, config: SyncConfig) -> Iterator[SyncEvent]:
        run_id = context.run.run_id
        warehouse_db = context.resources.warehouse_db
        with closing(open_feed(context.resources.whop.settings, feed.asset)) as reader:
            for event in sync_daily(context, config, warehouse_db, source, feed, reader.day):
                if isinstance(event, dg.AssetObservation) and event.partition:
                    seen.append(
                        (
                            event.partition,
                            observed_days(context.instance, run_id),
                            sorted(sync_log(sandbox.warehouse_url, run_id)),
                            sorted(partition_figures(context.instance)),
                        )
                    )
                yield event

    definitions = dg.Definitions(
        assets=[whop_payments],
        resources={
            key: value
            for key, value in (project_definitions().resources or {}).items()
            if key in ("whop", "warehouse_db")
        },
        jobs=[dg.define_asset_job("sync", selection=SELECTION)],
    )
    first, last = sandbox.first_day, sandbox.last_day
    result = definitions.resolve_job_def("sync").execute_in_process(
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        instance=instance,
    )
    assert result.success
    keys = [(first + timedelta(days=n)).isoformat() for n in range(3)]
    # day k shows while day k+1 is not committed yet, and no day waits for the step's end;
    # the last day is shown by its materialization, which follows at once
    assert seen == [
        (keys[0], [], keys[:1], []),
        (keys[1], keys[:1], keys[:2], []),
    ]
    assert sorted(partition_figures(instance)) == keys


def observed_days(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The days of `run_id` the instance shows so far (observations of a partition)."""
    records = instance.fetch_observations(PAYMENTS, limit=100).records
    return sorted(
        record.asset_observation.partition
        for record in records
        if record.run_id == run_id
        and record.asset_observation is not None
        and record.asset_observation.partition is not None
    )
