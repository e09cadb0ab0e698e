"""The daily schedule, the Elective file sensor and the failure alert, on a real instance."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.defs.automation import (
    AlertWebhookResource,
    alert_on_run_failure,
    daily_sync_schedule,
)
from costudy_pipelines.sandbox.servers import AlertReceiverServer
from costudy_pipelines.sources.elective.defs import ElectiveDropResource

# Elective's older layout, the one with an email column: a row the sync stores.
LEGACY_HEADER = (
    "Purchase Date (UTC),Customer,Customer Email,Checkout,Type,Term,Order Total,Fees,"
    "Net Amount,Status\n"
)
HEADER = "Purchase Date (UTC),Student Name,Student Email,Product Purchased,Currency,Order Total\n"


def evaluate(
    folder: Path, cursor: str | None, instance: dg.DagsterInstance | None = None
) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(
        cursor=cursor,
        instance=instance or dg.DagsterInstance.ephemeral(),
        resources={"elective": ElectiveDropResource(folder=str(folder), settle_seconds=0)},
    )
    sensor = project_definitions().resolve_sensor_def("new_elective_exports")
    return sensor(context)


def test_elective_sensor_takes_each_finished_export_once(tmp_path: Path) -> None:
    (tmp_path / "orders-1.csv").write_text(HEADER + "2024-01-02,Zoë,zoe@example.org,Pro,USD,99\n")
    first = evaluate(tmp_path, None)
    assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
    assert json.loads(first.cursor).keys() == {"orders-1.csv"}

    again = evaluate(tmp_path, first.cursor)
    assert isinstance(again, dg.SkipReason), "nothing new: no second run"

    half_written = tmp_path / "orders-2.csv"
    half_written.write_text(HEADER + "2024-01-03,Ann,ann@example.org,Pro,USD,4")  # no newline
    waiting = evaluate(tmp_path, first.cursor)
    assert isinstance(waiting, dg.SkipReason)
    assert "orders-2.csv" in waiting.skip_message and "still being written" in waiting.skip_message

    half_written.write_text(HEADER + "2024-01-03,Ann,ann@example.org,Pro,USD,49\n")
    second = evaluate(tmp_path, first.cursor)
    assert isinstance(second, dg.SensorResult)
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert json.loads(second.cursor).keys() == {"orders-1.csv", "orders-2.csv"}


def test_elective_sensor_skips_an_export_another_run_took(
    tmp_path: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's job takes the export; the sensor, started later with no cursor (`costudy
    ui`), launches nothing for it, and a changed file is new again."""
    export = tmp_path / "orders-1.csv"
    export.write_text(
        LEGACY_HEADER + "2024-01-02 10:00:00,Zoë,zoe@example.org,pro,Funding,1,99,3,96,Paid\n"
    )
    monkeypatch.setenv("WAREHOUSE_DB_URL", warehouse_url)
    defs = project_definitions()
    elective = ElectiveDropResource(folder=str(tmp_path), settle_seconds=0)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [defs.get_assets_def("elective_rows")],
            instance=instance,
            resources={"elective": elective, "warehouse_db": defs.resources["warehouse_db"]},
        )
        assert result.success

        skipped = evaluate(tmp_path, None, instance)
        assert isinstance(skipped, dg.SkipReason), "the demo took it: nothing to launch"

        export.write_text(
            LEGACY_HEADER + "2024-01-02 10:00:00,Zoë,zoe@example.org,pro,Funding,1,98,3,95,Paid\n"
        )
        changed = evaluate(tmp_path, None, instance)
        assert isinstance(changed, dg.SensorResult) and len(changed.run_requests) == 1


def test_daily_schedule_runs_the_day_that_just_ended() -> None:
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2024, 1, 5, 2, 0, tzinfo=UTC)
    )
    schedule = project_definitions().resolve_schedule_def(daily_sync_schedule.name)
    requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [request.partition_key for request in requests] == ["2024-01-04"]


@pytest.fixture
def alert_receiver():
    with AlertReceiverServer() as server:
        yield server


def test_failed_run_is_posted_to_the_alert_webhook(alert_receiver: AlertReceiverServer) -> None:
    @dg.asset
    def broken_extract() -> None:
        raise RuntimeError("Whop answered 503 three times")

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([broken_extract], instance=instance, raise_on_error=False)
    assert not result.success
    [failure] = [
        entry.dagster_event
        for entry in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    ]

    context = dg.build_run_status_sensor_context(
        sensor_name=alert_on_run_failure.name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure,
        resources={"alert_webhook": AlertWebhookResource(url=alert_receiver.webhook_url)},
    ).for_run_failure()
    alert_on_run_failure(context)

    [alert] = alert_receiver.received()
    assert alert["kind"] == "run_failure" and alert["run_id"] == result.run_id
    assert alert["failed_steps"] == ["broken_extract"]
