"""Sync health in the UI: the sync_runs and sync_health views (assets of warehouse_views) record
every session and the state of every feed; `sync_health_report` turns them into one page: a
status table of every source with its last success and rows/s, and a rows/s chart."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import psycopg
from psycopg.rows import dict_row

from costudy_pipelines.defs._metadata import Metadata, metadata_table
from costudy_pipelines.lib.sync_health import feed_health, report_markdown, stale
from costudy_pipelines.sources.registry import load_registry

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


def _feeds(conn: psycopg.Connection) -> Metadata:
    feeds = feed_health(conn, load_registry().sync_log_names())
    rows = [_plain(vars(feed)) for feed in feeds]
    return {"feeds": metadata_table(rows, FEED_COLUMNS), "feed_count": len(feeds)}


# What each sync view's materialization records, by view name (used by warehouse_views).
SYNC_HEALTH_METADATA = {"sync_runs": _recent_runs, "sync_health": _feeds}


@dg.asset(
    group_name="sync_health",
    deps=[dg.AssetKey("sync_health")],
    kinds={"postgres"},
    required_resource_keys={"warehouse_db"},
    description=(
        "Every sync at a glance: each source's last run, last success and its age, rows/s, "
        "users synced, failures this week and its recent runs, with a rows/s chart."
    ),
)
def sync_health_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    with context.resources.warehouse_db.connect(autocommit=True) as conn:
        feeds = feed_health(conn, load_registry().sync_log_names())
    now = datetime.now(UTC)
    # late: no success within the most lenient source's fail window
    fail_hours = max(source.source.freshness.fail_hours for source in load_registry())
    max_age = timedelta(hours=fail_hours)
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.md(report_markdown(feeds, now, max_age)),
            "feeds": metadata_table([_plain(vars(feed)) for feed in feeds], FEED_COLUMNS),
            "failing": sum(1 for feed in feeds if feed.last_status == "FAILED"),
            "never_synced": sum(1 for feed in feeds if feed.last_status is None),
            "stale": sum(1 for feed in feeds if stale(feed, now, max_age)),
        }
    )


defs = dg.Definitions(assets=[sync_health_report])
