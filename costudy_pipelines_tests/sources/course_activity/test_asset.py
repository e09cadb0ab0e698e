"""The course_activity asset as the project defines it (registry → defs.py), materialized from
the MongoDB wire server into a real warehouse: its checks pass, a re-run writes nothing, a
connection that keeps dropping fails the partition with nothing written, and the learning-
progress view reconciles with the table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pytest

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib import pg
from costudy_pipelines.sandbox.course_activity import (
    DATABASE,
    activity_truth,
    seed_course_users,
)
from costudy_pipelines.sandbox.servers.mongo_wire import MongoWireServer, drop_connection
from costudy_pipelines.sandbox.world import World
from costudy_pipelines.sources.course_activity.defs import MongoResource
from costudy_pipelines_tests.sources.course_activity.support import busiest_day

ACTIVITY = dg.AssetKey("course_activity")
PROGRESS = dg.AssetKey("course_learning_progress")


def definitions_of(key: dg.AssetKey) -> list:
    """The project's asset and the checks on it."""
    defs = project_definitions()
    checks = [
        checks
        for checks in defs.asset_checks or []
        if any(check.asset_key == key for check in checks.check_keys)
    ]
    [asset] = [
        asset
        for asset in defs.assets or []
        if isinstance(asset, dg.AssetsDefinition) and key in asset.keys
    ]
    return [asset, *checks]


@pytest.fixture
def resources(
    world: World, server: MongoWireServer, databases, warehouse_url: str
) -> Iterator[dict[str, object]]:
    course_url = databases.create()
    seed_course_users(course_url, world)
    yield {
        # small batches: a day takes several getMores, so a fault can strike mid-cursor
        "course_mongo": MongoResource(uri=server.uri, database=DATABASE, batch_size=7),
        "course_db": PostgresResource(url=course_url, env_var="COURSE_DB_URL"),
        "warehouse_db": PostgresResource(url=warehouse_url, env_var="WAREHOUSE_DB_URL"),
    }


def materialize(resources, instance, day) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        definitions_of(ACTIVITY),
        resources=resources,
        instance=instance,
        partition_key=day.isoformat(),
        raise_on_error=False,
    )


def checks_passed(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_partitions_land_with_passing_checks_rerun_writes_nothing_and_progress_reconciles(
    world, resources, warehouse_url
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    days = [busiest_day(world), busiest_day(world) + timedelta(days=1)]
    for day in days:
        result = materialize(resources, instance, day)
        assert result.success
        truth = activity_truth(world, day)
        [event] = result.get_asset_materialization_events()
        metadata = event.materialization.metadata
        assert metadata["records_in"].value == truth.documents
        assert metadata["rejected"].value == len(truth.rejects)
        passed = checks_passed(result)
        assert set(passed) == {"integrity", "run_accounting", "reject_rate", "counts_match_source"}
        assert passed["integrity"] and passed["run_accounting"] and passed["counts_match_source"]

    rerun = materialize(resources, instance, days[0])
    [event] = rerun.get_asset_materialization_events()
    assert (event.materialization.metadata["inserted"].value,
            event.materialization.metadata["updated"].value) == (0, 0)  # fmt: skip

    view = dg.materialize(definitions_of(PROGRESS), resources=resources, instance=instance)
    assert view.success
    assert checks_passed(view) == {"reconciles_with_activity": True}
    with pg.connect(warehouse_url, source="test", autocommit=True) as conn:
        tests = conn.execute(
            "select coalesce(sum(tests_completed), 0) from course_learning_progress"
        ).fetchone()
    expected = sum(
        progress.tests_completed
        for day in days
        for progress in activity_truth(world, day).progress.values()
    )
    assert tests is not None and tests[0] == expected


def test_a_connection_that_keeps_dropping_fails_the_partition_with_nothing_written(
    world, server, resources, warehouse_url
) -> None:
    server.add_fault(drop_connection(on_get_more=1, count=None))  # every getMore, for good
    result = materialize(resources, dg.DagsterInstance.ephemeral(), busiest_day(world))
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    message = failure.event_specific_data.error.message
    assert "user_activity" in message, message
    with pg.connect(warehouse_url, source="test", autocommit=True) as conn:
        stored = conn.execute("select count(*) from course_activity").fetchone()
        status = conn.execute(
            "select status from sync_log where source = 'course_activity'"
        ).fetchall()
    assert stored == (0,)
    assert status == [("FAILED",)]
