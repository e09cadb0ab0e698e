"""Sync health: the views over sync_log and the report list every source with its last
success, as an independent reading of sync_log says, and show failures for what they are."""

from __future__ import annotations

import pytest

from costudy_pipelines.lib.loading import SyncFailed, sync_session
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.sources.gohighlevel.spec import ghl_contacts as spec_ghl_contacts
from costudy_pipelines.sources.registry import load_registry
from costudy_pipelines_tests.finance.support import REPORT, VIEW_ASSETS, materialized, run

SYNC_VIEWS = [VIEW_ASSETS["sync_runs"], VIEW_ASSETS["sync_health"]]


def broken_extract():
    yield {"id": "c1", "locationId": "loc", "email": "a@example.com"}
    raise ConnectionError("GoHighLevel closed the connection (page 2)")


@pytest.fixture
def with_a_failed_sync(dbs) -> str:
    """The loaded warehouse plus one failed GoHighLevel session; returns its URL."""
    with pytest.raises(SyncFailed):
        sync_session(dbs.warehouse, spec_ghl_contacts(), broken_extract(), partition="2024-01-05")
    return dbs.warehouse


def last_successes(url: str) -> dict[str, str]:
    """Per source (and sheet), when its last SUCCESS or PARTIAL session completed."""
    with connect(url, source="WAREHOUSE_DB_URL", autocommit=True) as conn:
        rows = conn.execute(
            "select source, scope->>'worksheet', max(completed_at) from sync_log"
            " where status in ('SUCCESS', 'PARTIAL') group by 1, 2"
        ).fetchall()
    return {f"{source}|{worksheet or ''}": completed for source, worksheet, completed in rows}


def test_the_report_lists_every_source_with_its_last_success(dbs, instance, with_a_failed_sync):
    result = run(dbs, instance, [*SYNC_VIEWS, REPORT])
    assert materialized(result) == {"sync_runs", "sync_health", "sync_health_report"}
    metadata = result.asset_materializations_for_node("sync_health_report")[0].metadata
    report = metadata["report"].value
    feeds = {row.data["feed"]: row.data for row in metadata["feeds"].value.records}

    for source in load_registry().sync_log_names():
        assert any(feed.startswith(source) for feed in feeds), source
        assert f"| {source}" in report, source
    assert len([feed for feed in feeds if feed.startswith("sheet_rows ")]) == 3  # per worksheet

    expected = last_successes(with_a_failed_sync)
    for feed, row in feeds.items():
        worksheet = feed.split("/")[-1] if feed.startswith("sheet_rows ") else ""
        key = f"{row['feed'].split(' ')[0]}|{worksheet}"
        if key in expected:
            assert row["last_success_at"] == expected[key].isoformat(timespec="seconds"), feed
            assert row["last_status"] in ("SUCCESS", "PARTIAL")
            assert row["last_success_rows_per_s"] > 0
        else:
            assert row["last_success_at"] is None, feed

    ghl = feeds["ghl_contacts"]
    assert (ghl["last_status"], ghl["failures_7d"], ghl["last_success_at"]) == ("FAILED", 1, None)
    assert "| 🔴 | ghl_contacts | FAILED" in report
    assert "GoHighLevel closed the connection" in report
    assert "| ⚪ | whop_memberships | never | never |" in report
    assert metadata["failing"].value == 1
    ran = 6
    assert metadata["never_synced"].value == len(load_registry().sync_log_names()) - ran
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
