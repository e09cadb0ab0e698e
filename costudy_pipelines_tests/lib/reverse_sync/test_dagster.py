"""The reverse sync in Dagster: assets and checks materialized on real databases, the sensor
evaluated against a real Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pytest

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.defs.reverse_sync import (
    EVENT_TAG,
    JOB_SELECTION,
    PLATFORM_SCHEMA,
    QUEUE_TAG,
    TRIGGER_TAG,
    PlatformApiResource,
    ReverseSyncConfig,
    build_reverse_sync_defs,
    reflected_check_key,
    schema_check_key,
    sync_key,
    website_key,
)
from costudy_pipelines.lib.reverse_sync import EVENT_TYPES, SensorCursor, event_type
from costudy_pipelines_tests.lib.reverse_sync.support import (
    add_rows,
    api_root,
    count,
    demo_request,
    rows,
)

DIRECT = dict.fromkeys(EVENT_TYPES, "direct")
DEMO, VOTES = event_type("demo_requests"), event_type("votes")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


@pytest.fixture
def resources(website_url: str, platform_url: str) -> dict[str, object]:
    return {
        "website_db": PostgresResource(url=website_url, env_var="WEBSITE_DB_URL"),
        "platform_db": PostgresResource(url=platform_url, env_var="PLATFORM_DB_URL"),
    }


def everything(defs: dg.Definitions) -> list:
    return [*defs.assets, *defs.asset_checks]


def with_resources(defs: dg.Definitions, resources: dict[str, object]) -> dg.Definitions:
    return dg.Definitions.merge(defs, dg.Definitions(resources=resources))


def seed(website) -> None:
    add_rows(website, "demo_requests", [demo_request("Ann@Example.com"), demo_request("oops")])
    add_rows(website, "votes", [{"email": "v@example.com", "feature_slug": "sso", "value": 1}])
    add_rows(
        website,
        "email_subscriptions",
        [{"email": "s@example.com", "list_name": "news", "status": "subscribed"}],
    )
    add_rows(website, "contact_submissions", [{"email": "c@example.com", "content": "Hi"}])


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
        for e in result.get_asset_check_evaluations()
    }


def test_the_one_definitions_loads_the_reverse_sync() -> None:
    from costudy_pipelines.definitions import project_definitions

    defs = project_definitions()

    dg.Definitions.validate_loadable(defs)
    graph = defs.get_repository_def().asset_graph
    for event in EVENT_TYPES.values():
        assert sync_key(event) in graph.get_all_asset_keys()
        assert {schema_check_key(event), reflected_check_key(event)} <= set(graph.asset_check_keys)
    assert defs.resolve_job_def("reverse_sync")
    assert defs.resolve_sensor_def("reverse_sync_new_rows")
    assert defs.resolve_schedule_def("reverse_sync_batch")


def test_the_assets_materialize_every_event_type_and_the_checks_pass(
    website, platform, resources, instance
) -> None:
    seed(website)

    result = dg.materialize(
        everything(build_reverse_sync_defs(DIRECT)),
        resources=resources,
        instance=instance,
        selection=JOB_SELECTION,
    )

    assert result.success
    assert [
        count(platform, t) for t in ("leads", "engagements", "mailing_list", "support_tickets")
    ] == [1, 1, 1, 1]
    [leads] = [
        m for m in result.get_asset_materialization_events() if m.asset_key == sync_key(DEMO)
    ]
    metadata = leads.materialization.metadata
    assert (metadata["synced"].value, metadata["dead"].value, metadata["strategy"].value) == (
        1,
        1,
        "direct",
    )
    assert metadata["success_rate"].value == 0.5
    assert [r.data["reason"] for r in metadata["dead_letters_sample"].value.records] == [
        "malformed email (An email address must have an @-sign.)"  # without the address
    ]
    assert set(checks(result).values()) == {True}
    assert len(checks(result)) == 8


def test_a_failing_blocking_input_check_stops_its_sync_in_the_same_run(
    website, platform, resources, instance
) -> None:
    seed(website)
    website.execute("alter table demo_requests drop column company")  # the website changed

    result = dg.materialize(
        everything(build_reverse_sync_defs(DIRECT)),
        resources=resources,
        instance=instance,
        raise_on_error=False,
        selection=JOB_SELECTION,
    )

    assert checks(result)["website_db/demo_requests:has_synced_columns"] is False
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert sync_key(DEMO) not in materialized
    assert sync_key(VOTES) in materialized  # the other event types go on
    assert count(platform, "leads") == 0


def test_a_dry_run_observes_what_would_be_written_and_writes_nothing(
    website, platform, resources, instance
) -> None:
    seed(website)
    defs = build_reverse_sync_defs(DIRECT)

    result = dg.materialize(
        [*defs.assets],
        resources=resources,
        instance=instance,
        selection=[sync_key(DEMO)],
        run_config=dg.RunConfig(ops={"reverse_sync__leads": ReverseSyncConfig(dry_run=True)}),
    )

    assert result.get_asset_materialization_events() == []
    [observation] = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    metadata = observation.asset_observation_data.asset_observation.metadata
    assert (metadata["synced"].value, metadata["dry_run"].value) == (1, True)
    assert len(metadata["planned_sample"].value.records) == 1
    assert count(platform, "leads") == count(platform, "reverse_sync_tracking") == 0


def test_the_api_strategy_asset_writes_through_the_platform_api(
    website, platform, resources, instance, platform_api, api_token
) -> None:
    seed(website)
    defs = build_reverse_sync_defs(DIRECT | {"demo_requests": "api"})
    api = PlatformApiResource(base_url=api_root(platform_api), token=api_token)

    result = dg.materialize(
        everything(defs),
        resources=resources | {"platform_api": api},
        instance=instance,
        selection=dg.AssetSelection.assets(sync_key(DEMO)),
    )

    assert result.success
    [lead] = platform_api.created("leads")
    assert lead["email"] == "ann@example.com"
    assert count(platform, "leads") == 0  # the API owns the write, not us
    assert checks(result) == {"reverse_sync/leads:reflected_in_platform": True}


def evaluate(defs: dg.Definitions, instance, resources, cursor: str | None):
    sensor = with_resources(defs, resources).resolve_sensor_def("reverse_sync_new_rows")
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return sensor.evaluate_tick(context)


def test_the_sensor_requests_one_run_per_changed_table_with_stable_keys(
    website, platform, resources, instance
) -> None:
    defs = build_reverse_sync_defs(DIRECT)
    add_rows(website, "demo_requests", [demo_request("a@example.com")])
    add_rows(website, "votes", [{"email": None, "feature_slug": "sso", "value": 1}])

    first = evaluate(defs, instance, resources, None)
    assert sorted(r.tags[EVENT_TAG] for r in first.run_requests) == ["demo_requests", "votes"]
    request = next(r for r in first.run_requests if r.tags[EVENT_TAG] == "demo_requests")
    assert request.asset_selection == [sync_key(DEMO)]
    assert set(request.asset_check_keys) == {schema_check_key(DEMO), reflected_check_key(DEMO)}
    assert (request.tags[QUEUE_TAG], request.tags[TRIGGER_TAG]) == (
        "reverse_sync.demo_requests",
        "sensor",
    )

    nothing_new = evaluate(defs, instance, resources, first.cursor)
    assert (nothing_new.run_requests, nothing_new.cursor) == ([], first.cursor)
    assert nothing_new.skip_message

    # The same source state (a cursor that was never stored) asks for the same runs.
    replayed = evaluate(defs, instance, resources, None)
    assert sorted(r.run_key for r in replayed.run_requests) == sorted(
        r.run_key for r in first.run_requests
    )

    add_rows(website, "votes", [{"email": None, "feature_slug": "api", "value": -1}])
    later = evaluate(defs, instance, resources, first.cursor)
    assert [r.tags[EVENT_TAG] for r in later.run_requests] == ["votes"]
    assert later.run_requests[0].run_key not in {r.run_key for r in first.run_requests}
    before, after = SensorCursor.from_json(first.cursor), SensorCursor.from_json(later.cursor)
    assert after.tables["votes"] > before.tables["votes"]
    assert after.tables["demo_requests"] == before.tables["demo_requests"]


def test_the_sensor_cursor_never_goes_back(website, platform, resources, instance) -> None:
    defs = build_reverse_sync_defs(DIRECT)
    [row] = add_rows(
        website,
        "demo_requests",
        [demo_request("a@example.com", updated_at=datetime(2030, 1, 1, tzinfo=UTC))],
    )
    ahead = evaluate(defs, instance, resources, None)

    website.execute("delete from demo_requests where id = %s", (row,))
    add_rows(website, "demo_requests", [demo_request("b@example.com")])  # older than the cursor
    after = evaluate(defs, instance, resources, ahead.cursor)

    assert after.cursor == ahead.cursor and after.run_requests == []


def test_the_sensor_reads_webhook_pushes(website, platform, resources, instance) -> None:
    defs = build_reverse_sync_defs(DIRECT)
    idle = evaluate(defs, instance, resources, None)
    assert idle.run_requests == []
    inbox_id = platform.execute(
        "insert into reverse_sync_webhook_inbox (delivery_id, event_type, source_id, payload, "
        "signature_verified) values ('d-1', 'contact_submissions', '9', '{}', true) returning id"
    ).fetchone()[0]

    pushed = evaluate(defs, instance, resources, idle.cursor)

    [request] = pushed.run_requests
    assert request.tags[EVENT_TAG] == "contact_submissions"
    assert request.run_key.endswith(f"inbox-{inbox_id}")
    assert evaluate(defs, instance, resources, pushed.cursor).run_requests == []


@pytest.mark.parametrize("waiting_for", ["sensor", "automation"])
def test_no_second_run_while_one_waits_to_start(
    website, platform, resources, instance, waiting_for
):
    defs = build_reverse_sync_defs(DIRECT)
    add_rows(website, "votes", [{"email": None, "feature_slug": "sso", "value": 1}])
    first = evaluate(defs, instance, resources, None)
    [request] = first.run_requests
    job = with_resources(defs, resources).resolve_job_def("reverse_sync")
    # As the daemon leaves it: created for this sensor's request (or an automation-condition
    # sensor's, with its run tags), not started yet.
    instance.create_run_for_job(
        job,
        status=dg.DagsterRunStatus.NOT_STARTED,
        tags={**request.tags, TRIGGER_TAG: waiting_for, "dagster/run_key": request.run_key},
    )

    add_rows(website, "votes", [{"email": None, "feature_slug": "api", "value": 1}])
    add_rows(website, "demo_requests", [demo_request("a@example.com")])
    second = evaluate(defs, instance, resources, first.cursor)

    # The waiting votes run will read the new vote when it starts: no second votes run.
    assert [r.tags[EVENT_TAG] for r in second.run_requests] == ["demo_requests"]
    assert second.cursor != first.cursor


def test_sensor_runs_land_the_rows_and_leave_nothing_to_request(
    website, platform, resources, instance
) -> None:
    defs = build_reverse_sync_defs(DIRECT)
    seed(website)
    first = evaluate(defs, instance, resources, None)
    job = with_resources(defs, resources).resolve_job_def("reverse_sync")

    for request in first.run_requests:
        result = job.execute_in_process(
            instance=instance,
            asset_selection=request.asset_selection,
            tags={**request.tags, "dagster/run_key": request.run_key},
        )
        assert result.success

    assert len(instance.get_runs()) == 4
    assert evaluate(defs, instance, resources, first.cursor).run_requests == []
    assert rows(
        platform,
        "select status, count(*) from reverse_sync_tracking group by status order by status",
    ) == [{"status": "dead", "count": 1}, {"status": "synced", "count": 4}]


def test_the_batch_schedule_requests_every_event_type_once_per_tick() -> None:
    # The schedule reads no database: resources that name one nobody connects to will do.
    unused = {
        key: PostgresResource(url="postgresql://nobody@127.0.0.1:1/none", env_var=key)
        for key in ("website_db", "platform_db")
    }
    schedule = with_resources(build_reverse_sync_defs(DIRECT), unused).resolve_schedule_def(
        "reverse_sync_batch"
    )
    tick = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)

    requests = schedule.evaluate_tick(
        dg.build_schedule_context(scheduled_execution_time=tick)
    ).run_requests

    assert sorted(r.tags[EVENT_TAG] for r in requests) == sorted(EVENT_TYPES)
    assert len({r.run_key for r in requests}) == 4
    assert all(r.tags[TRIGGER_TAG] == "schedule" for r in requests)


def requested(tick: dg.EvaluateAutomationConditionsResult) -> set[dg.AssetKey | dg.AssetCheckKey]:
    """The assets and checks one tick of the automation-condition sensors asks to run."""
    return {result.key for result in tick.results if not result.true_subset.is_empty}


def report_update(instance: dg.DagsterInstance, key: dg.AssetKey) -> None:
    """An input updated outside these definitions: the website app reporting a change to its
    table through Dagster's API, or a migration of the platform schema."""
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key))


def run_requested(defs, resources, instance, tick) -> dg.ExecuteInProcessResult:
    """Execute what a tick requested, as the run the sensor would launch."""
    keys = requested(tick)
    selection = dg.AssetSelection.assets(
        *(k for k in keys if isinstance(k, dg.AssetKey))
    ) | dg.AssetSelection.checks(*(k for k in keys if isinstance(k, dg.AssetCheckKey)))
    return dg.materialize(
        everything(defs),
        resources=resources,
        instance=instance,
        selection=selection,
        raise_on_error=False,
    )


def run_of(event) -> set[dg.AssetKey | dg.AssetCheckKey]:
    return {sync_key(event), schema_check_key(event), reflected_check_key(event)}


def test_automation_waits_across_runs_for_the_blocking_checks_of_the_inputs(
    website, platform, resources, instance
) -> None:
    defs = build_reverse_sync_defs(DIRECT)
    seed(website)
    website.execute("alter table demo_requests drop column company")  # the website changed

    def tick(previous=None) -> dg.EvaluateAutomationConditionsResult:
        return dg.evaluate_automation_conditions(
            defs=with_resources(defs, resources),
            instance=instance,
            cursor=previous.cursor if previous else None,
        )

    first = tick()
    assert requested(first) == set()  # nothing has happened to any input yet

    # The website reports changes: each sync is requested with its input's check, one run.
    report_update(instance, website_key(DEMO))
    report_update(instance, website_key(VOTES))
    reported = tick(first)
    assert requested(reported) == run_of(DEMO) | run_of(VOTES)
    run = run_requested(defs, resources, instance, reported)
    assert checks(run)["website_db/demo_requests:has_synced_columns"] is False
    assert {m.asset_key for m in run.get_asset_materialization_events()} == {sync_key(VOTES)}
    settled = tick(reported)  # the sensor's next tick sees the run's results: nothing to do
    assert requested(settled) == set()

    # Across runs: the platform schema is migrated. The votes sync goes on; the demo-request sync
    # waits, since the last check of its website table, on the table's latest version, failed.
    report_update(instance, PLATFORM_SCHEMA)
    migrated = tick(settled)
    assert sync_key(VOTES) in requested(migrated)
    assert sync_key(DEMO) not in requested(migrated)
    waiting = tick(migrated)
    assert requested(waiting) & run_of(DEMO) == set()  # and keeps waiting
    assert count(platform, "leads") == 0

    # The website is fixed and the check run again (alone, by an operator): the sync it held
    # back is requested on the next tick, without the check, which has passed on this version.
    website.execute("alter table demo_requests add column company text")
    rechecked = dg.materialize(
        everything(defs),
        resources=resources,
        instance=instance,
        selection=dg.AssetSelection.checks(schema_check_key(DEMO)),
    )
    assert checks(rechecked) == {"website_db/demo_requests:has_synced_columns": True}
    released = tick(waiting)
    assert requested(released) & run_of(DEMO) == {sync_key(DEMO), reflected_check_key(DEMO)}
    assert run_requested(defs, resources, instance, released).success
    assert count(platform, "leads") == 1


def test_one_automation_sensor_per_event_type_stopped_until_started() -> None:
    from costudy_pipelines.definitions import project_definitions

    defs = project_definitions()

    repository = defs.get_repository_def()
    graph = repository.asset_graph
    assert "default_automation_condition_sensor" not in {s.name for s in repository.sensor_defs}
    for event in EVENT_TYPES.values():
        sensor = defs.resolve_sensor_def(f"reverse_sync_automation_{event.name}")
        assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
        assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
        assert sensor.asset_selection.resolve(graph) == {sync_key(event)}
        assert sensor.asset_selection.resolve_checks(graph) == {
            schema_check_key(event),
            reflected_check_key(event),
        }
        assert sensor.run_tags == {
            QUEUE_TAG: f"reverse_sync.{event.name}",
            EVENT_TAG: event.name,
            TRIGGER_TAG: "automation",
        }
