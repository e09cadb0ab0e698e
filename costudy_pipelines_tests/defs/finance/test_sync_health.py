"""Sync health: the views over sync_log and the report list every source with its last
success, as an independent reading of sync_log says, and show failures for what they are."""

from __future__ import annotations

import functools

import dagster as dg
import pytest

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.defs import sync_health
from costudy_pipelines.lib.loading import SyncFailed, sync_session
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.sources.ghl.spec import ghl_contacts as spec_ghl_contacts
from costudy_pipelines.sources.registry import load_registry
from costudy_pipelines_tests.defs.finance.support import REPORT, VIEW_ASSETS, materialized, run
from costudy_pipelines_tests.registered import registered

SYNC_VIEWS = [VIEW_ASSETS["sync_runs"], VIEW_ASSETS["sync_health"]]
CONTACTS = registered(spec_ghl_contacts())


def broken_extract():
    yield {"id": "c1", "locationId": "loc", "email": "a@example.com"}
    raise ConnectionError("GoHighLevel closed the connection (page 2)")


@pytest.fixture
def with_a_failed_sync(dbs) -> str:
    """The loaded warehouse plus one failed GoHighLevel session; returns its URL."""
    with pytest.raises(SyncFailed):
        sync_session(dbs.warehouse, CONTACTS, broken_extract(), partition="2024-01-05")
    return dbs.warehouse


def last_successes(url: str) -> dict[str, str]:
    """Per source (and spreadsheet, worksheet): when its last SUCCESS or PARTIAL completed."""
    with connect(url, source="WAREHOUSE_DB_URL", autocommit=True) as conn:
        rows = conn.execute(
            "select source, scope->>'spreadsheet_id', scope->>'worksheet', max(completed_at)"
            " from sync_log where status in ('SUCCESS', 'PARTIAL') group by 1, 2, 3"
        ).fetchall()
    return {f"{source}|{key or ''}|{sheet or ''}": done for source, key, sheet, done in rows}


def test_the_report_lists_every_source_with_its_last_success(dbs, instance, with_a_failed_sync):
    result = run(dbs, instance, [*SYNC_VIEWS, REPORT])
    assert materialized(result) == {"sync_runs", "sync_health", "sync_health_report"}
    metadata = result.asset_materializations_for_node("sync_health_report")[0].metadata
    report = metadata["report"].value
    feeds = {row.data["feed"]: row.data for row in metadata["feeds"].value.records}

    registry = load_registry()
    for _, feed in registry.feeds():  # one name per feed: its asset's
        assert feed.asset in feeds, feed.asset
        assert f"| {feed.asset} |" in report, feed.asset
    # this world's spreadsheets are not the ones sources.toml names: listed by their own names
    others = set(feeds) - {feed.asset for _, feed in registry.feeds()}
    assert others and all(name.startswith("world_sheet_") for name in others), others

    expected = last_successes(with_a_failed_sync)
    for asset, row in feeds.items():
        if asset in others:
            continue
        load = registry.feed(asset).load
        sheet = [load.scope.get(part) or "" for part in ("spreadsheet_id", "worksheet")]
        key = "|".join([load.name, *sheet])
        if key in expected:
            assert row["last_success_at"] == expected[key].isoformat(timespec="seconds"), asset
            assert row["last_status"] in ("SUCCESS", "PARTIAL")
            assert row["last_success_rows_per_s"] > 0
        else:
            assert row["last_success_at"] is None, asset

    ghl = feeds["ghl_contacts"]
    assert (ghl["last_status"], ghl["failures_7d"], ghl["last_success_at"]) == ("FAILED", 1, None)
    assert "| 🔴 | ghl_contacts | FAILED" in report
    assert "GoHighLevel closed the connection" in report
    assert "| ⚪ | whop_memberships | never | never |" in report
    assert metadata["failing"].value == 1
    never = [asset for asset, row in feeds.items() if row["last_status"] is None]
    assert metadata["never_synced"].value == len(never) > 0
    # timestamps, not ages baked in at materialization time
    assert "ago" not in report and "just now" not in report
    last_run = feeds["ghl_contacts"]["last_run_at"][:16].replace("T", " ")
    assert f"| 🔴 | ghl_contacts | FAILED {last_run} UTC | never |" in report
    # SPEC §4's monitoring numbers, plottable
    assert 0 < metadata["success_rate_7d"].value < 1
    assert metadata["users_synced_7d"].value > 0
    assert isinstance(metadata["last_success"], dg.TimestampMetadataValue)
    assert "`✓✓✓✓✓✓✓✓✓✓✓✓✓✓`" in report  # course_orders: its last 14 daily partitions
    assert "█" in report  # the rows/s bars


def test_sync_runs_records_every_session_with_users_and_rows_per_second(dbs, instance):
    result = run(dbs, instance, SYNC_VIEWS)
    metadata = result.asset_materializations_for_node("sync_runs")[0].metadata
    with connect(dbs.warehouse, source="WAREHOUSE_DB_URL", autocommit=True) as conn:
        sessions, users = conn.execute(
            "select count(*), sum(users_created + users_updated) from sync_log"
        ).fetchone()
        view_users = conn.execute("select sum(users_synced) from sync_runs").fetchone()[0]
    assert metadata["runs"].value == sessions > 20
    assert view_users == users > 0
    recent = metadata["recent_runs"].value.records
    assert len(recent) == 20
    assert all(row.data["rows_per_s"] > 0 for row in recent if row.data["records_processed"])


def test_feeds_current_fails_naming_the_feed_whose_last_run_failed(
    dbs, instance, with_a_failed_sync
):
    result = run(dbs, instance, [*SYNC_VIEWS, REPORT, sync_health.feeds_current])
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["failed"].value == "ghl_contacts"
    assert evaluation.metadata["overdue"].value == "none"  # the rest synced just now
    assert "whop_memberships" in evaluation.metadata["never_synced"].value


def test_sync_health_and_revenue_views_refresh_after_a_daily_sync(instance):
    """The automation sensor's condition, evaluated as the daemon does: once everything is
    materialized nothing is requested; a new partition of a source (the daily sync) requests
    the sync views, the report and the revenue views, with their checks."""
    defs = project_definitions()
    evaluate = functools.partial(dg.evaluate_automation_conditions, defs=defs, instance=instance)
    targets = defs.resolve_sensor_def("refresh_views_and_sync_health").asset_selection
    graph = defs.resolve_asset_graph()
    for key in targets.resolve(graph):  # what the demo's run leaves behind
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    first = evaluate()  # the sensor's first tick, as `costudy ui` starts after the demo
    assert first.total_requested == 0
    settled = evaluate(cursor=first.cursor)
    assert settled.total_requested == 0

    instance.report_runless_asset_event(
        dg.AssetMaterialization("whop_payments", partition="2024-01-05")
    )
    after_sync = evaluate(cursor=settled.cursor)
    requested = {
        result.key.to_user_string()
        if isinstance(result.key, dg.AssetKey)
        else f"{result.key.asset_key.to_user_string()}:{result.key.name}"
        for result in after_sync.results
        if not result.true_subset.is_empty
    }
    assert {
        "sync_runs",
        "sync_health",
        "sync_health_report",
        "sync_health_report:feeds_current",
        "revenue_lines",
        "revenue_lines:reconciles_with_sources",
    } <= requested, requested
    assert "course_learning_progress" not in requested  # not downstream of Whop
