"""Sync health in the UI: the sync_runs and sync_health views (assets of warehouse_views) record
every session and the state of every feed; `sync_health_report` turns them into one page: a
status table of every feed (by its asset's name) with its last success and rows/s, a rows/s
chart (as text, and as an SVG file it links to), SPEC §4's monitoring numbers as plottable
metadata, and the check `feeds_current`.

Always current: the views and the report carry REFRESH, so the automation sensor of
warehouse_views refreshes them after any source sync (sync_runs depends on every feed's
asset, see definitions.py)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import psycopg
from psycopg.rows import dict_row

from costudy_pipelines.defs._metadata import Metadata, chart_metadata, metadata_table
from costudy_pipelines.lib.loading.drift import DriftSeen, drift_history
from costudy_pipelines.lib.svg_charts import throughput_chart
from costudy_pipelines.lib.sync_health import (
    FeedHealth,
    feed_health,
    report_markdown,
    stale,
)
from costudy_pipelines.sources.registry import load_registry

# Materialize once any input has been updated (an upstream partition counts), even while
# other upstream partitions were never synced (days before a source's data, future days).
REFRESH = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())
REPORT_KEY = dg.AssetKey("sync_health_report")

RECENT_RUNS_SHOWN = 20
RUN_COLUMNS = {
    "feed": "string",
    "partition_key": "string",
    "status": "string",
    "started_at": "string",
    "duration_s": "float",
    "records_processed": "int",
    "users_synced": "int",
    "rows_per_s": "float",
    "error_message": "string",
}
FEED_COLUMNS = {
    "feed": "string",
    "last_status": "string",
    "last_run_at": "string",
    "last_success_at": "string",
    "last_success_rows_per_s": "float",
    "last_success_users": "int",
    "runs_7d": "int",
    "failures_7d": "int",
}


def _plain(row: dict) -> dict:
    """Values a metadata table can hold: times as ISO text, decimals as floats."""
    plain = {}
    for name, value in row.items():
        if isinstance(value, datetime):
            value = value.isoformat(timespec="seconds")
        elif isinstance(value, Decimal):
            value = float(value)
        plain[name] = value
    return plain


def _recent_runs(conn: psycopg.Connection) -> Metadata:
    with conn.cursor(row_factory=dict_row) as cursor:
        runs = cursor.execute(
            "select * from sync_runs order by started_at desc, sync_log_id desc limit %s",
            (RECENT_RUNS_SHOWN,),
        ).fetchall()
        counts = cursor.execute(
            "select count(*) as runs, count(*) filter (where status = 'FAILED') as failed"
            " from sync_runs"
        ).fetchone()
    assert counts is not None  # an aggregate always returns a row
    return {
        "recent_runs": metadata_table([_plain(run) for run in runs], RUN_COLUMNS),
        "runs": counts["runs"],
        "failed_runs": counts["failed"],
    }


def feed_names() -> list[str]:
    """Every registered feed's name: its asset's, and its sessions' in the sync views."""
    return load_registry().sync_log_names()


def fail_windows() -> dict[str, timedelta]:
    """Each registered feed (by asset) -> how long it may go without a success."""
    return {
        feed.asset: timedelta(hours=source.source.freshness.fail_hours)
        for source, feed in load_registry().feeds()
    }


def current_feeds(conn: psycopg.Connection) -> list[FeedHealth]:
    return feed_health(conn, feed_names())


def _feeds(conn: psycopg.Connection) -> Metadata:
    feeds = current_feeds(conn)
    rows = [_plain(vars(feed)) for feed in feeds]
    return {"feeds": metadata_table(rows, FEED_COLUMNS), "feed_count": len(feeds)}


# What each sync view's materialization records, by view name (used by warehouse_views).
SYNC_HEALTH_METADATA = {"sync_runs": _recent_runs, "sync_health": _feeds}


def monitoring(feeds: list[FeedHealth]) -> Metadata:
    """SPEC §4's monitoring numbers, each a plottable value over the report's history."""
    runs = sum(feed.runs_7d for feed in feeds)
    failures = sum(feed.failures_7d for feed in feeds)
    successes = [feed.last_success_at for feed in feeds if feed.last_success_at is not None]
    metadata: Metadata = {
        "users_synced_7d": int(sum(feed.users_synced_7d for feed in feeds)),
        "runs_7d": int(runs),
        "success_rate_7d": round(1 - failures / runs, 4) if runs else 1.0,
        "last_success_duration_s": float(sum(feed.last_success_duration_s or 0 for feed in feeds)),
    }
    if successes:
        metadata["last_success"] = dg.MetadataValue.timestamp(max(successes))
        metadata["oldest_last_success"] = dg.MetadataValue.timestamp(min(successes))
    return metadata


def drift_markdown(drift: list[DriftSeen], most: int = 30) -> str:
    """The shape drift history (costudy sources drift), latest first, below the report."""
    if not drift:
        return ""
    latest = sorted(drift, key=lambda item: item.first_seen_at, reverse=True)[:most]
    lines = ["", "", f"**Shape drift** ({len(drift)} change(s); costudy sources drift)", ""]
    lines += [f"- {item.describe()}" for item in latest]
    return "\n".join(lines)


@dg.asset(
    group_name="sync_health",
    deps=[dg.AssetKey("sync_health")],
    kinds={"postgres"},
    required_resource_keys={"warehouse_db"},
    automation_condition=REFRESH,
    description=(
        "Every sync at a glance: each feed's last run, last success, rows/s, users synced, "
        "failures this week and its recent runs, with a rows/s chart; refreshed after any "
        "source sync."
    ),
)
def sync_health_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    with context.resources.warehouse_db.connect(autocommit=True) as conn:
        feeds = current_feeds(conn)
        drift = drift_history(conn)
    now = datetime.now(UTC)
    # late: no success within the most lenient source's fail window
    max_age = max(fail_windows().values())
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.md(
                report_markdown(feeds, now, max_age) + drift_markdown(drift)
            ),
            "shape_changes": len(drift),
            "feeds_with_shape_drift": len({item.source for item in drift}),
            **chart_metadata("throughput_chart", throughput_chart(feeds)),
            "feeds": metadata_table([_plain(vars(feed)) for feed in feeds], FEED_COLUMNS),
            "failing": sum(1 for feed in feeds if feed.last_status == "FAILED"),
            "never_synced": sum(1 for feed in feeds if feed.last_status is None),
            "stale": sum(1 for feed in feeds if stale(feed, now, max_age)),
            **monitoring(feeds),
        }
    )


@dg.asset_check(
    asset=REPORT_KEY,
    name="feeds_current",
    required_resource_keys={"warehouse_db"},
    automation_condition=REFRESH,
    description="Fails when a feed's last run failed, or its last success is older than its "
    "source's freshness fail window (sources.toml), read live from sync_log; feeds never "
    "synced are listed, not failed.",
)
def feeds_current(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    with context.resources.warehouse_db.connect(autocommit=True) as conn:
        feeds = current_feeds(conn)
    now, windows = datetime.now(UTC), fail_windows()
    failed = [feed.feed for feed in feeds if feed.last_status == "FAILED"]
    overdue = [
        feed.feed
        for feed in feeds
        if feed.last_status not in (None, "FAILED")  # failed ones are listed as such
        and feed.feed in windows
        and stale(feed, now, windows[feed.feed])
    ]
    never = [feed.feed for feed in feeds if feed.last_status is None]
    return dg.AssetCheckResult(
        passed=not failed and not overdue,
        metadata={
            "failed": ", ".join(failed) or "none",
            "overdue": ", ".join(overdue) or "none",
            "never_synced": ", ".join(never) or "none",
            "feeds": len(feeds),
        },
    )


defs = dg.Definitions(assets=[sync_health_report], asset_checks=[feeds_current])
