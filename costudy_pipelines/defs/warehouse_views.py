"""One asset per warehouse view file (sql/views/<name>.sql): materializing creates or replaces
the view in one transaction, then records its columns and what the view is about.

Every view depends on the warehouse schema and on the assets its file names as `upstream`.
A name ending in `*` (sheet_* : one asset per configured sheet) is resolved against the whole
project by definitions.py (project_policies).
"""

import hashlib
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import psycopg

from costudy_pipelines.defs._metadata import Metadata
from costudy_pipelines.defs.finance import REVENUE_METADATA
from costudy_pipelines.defs.people import PEOPLE_METADATA
from costudy_pipelines.defs.sync_health import REFRESH, REPORT_KEY, SYNC_HEALTH_METADATA
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.lib.views import ViewApplyError, ViewFile, apply_view, discover_views

WAREHOUSE_SCHEMA = dg.AssetKey("warehouse_schema_dev")
UPSTREAM_PATTERNS = "costudy/upstream_patterns"

Describe = Callable[[psycopg.Connection], Metadata]
DESCRIBE: dict[str, Describe] = {**REVENUE_METADATA, **SYNC_HEALTH_METADATA, **PEOPLE_METADATA}


def _columns(conn: psycopg.Connection, view: str) -> dg.TableSchema:
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = current_schema() and table_name = %s order by ordinal_position",
        (view,),
    ).fetchall()
    return dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in rows])


def _shown(path: Path) -> str:
    """The file relative to the project when it is one of the project's."""
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def view_asset(view: ViewFile) -> dg.AssetsDefinition:
    patterns = [name for name in view.upstream if name.endswith("*")]
    describe = DESCRIBE.get(view.name)

    @dg.asset(
        name=view.name,
        group_name=view.group,
        deps=[WAREHOUSE_SCHEMA, *(dg.AssetKey(n) for n in view.upstream if n not in patterns)],
        kinds={"postgres", "sql"},
        required_resource_keys={"warehouse_db"},
        description=view.description,
        code_version=hashlib.sha256(view.sql.encode()).hexdigest()[:16],
        automation_condition=REFRESH,
        metadata={
            "view_file": _shown(view.path),
            **({UPSTREAM_PATTERNS: ", ".join(patterns)} if patterns else {}),
        },
    )
    def materialize(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with context.resources.warehouse_db.connect(autocommit=True) as conn:
            try:
                apply_view(conn, view)
            except ViewApplyError as exc:
                raise dg.Failure(description=str(exc)) from None
            metadata = {
                "dagster/column_schema": _columns(conn, view.name),
                **(describe(conn) if describe else {}),
            }
        return dg.MaterializeResult(metadata=metadata)

    return materialize


VIEWS = discover_views()

# Refreshes each view (its metadata: totals, recent runs) and the sync-health report, with
# their checks (the revenue reconciliation among them), once an input has been updated: after
# the daily sync, a backfill, an Elective export.
refresh_views = dg.AutomationConditionSensorDefinition(
    "refresh_views_and_sync_health",
    target=dg.AssetSelection.assets(*(view.name for view in VIEWS), REPORT_KEY),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Views, their checks and the sync-health report, after any of their inputs.",
)

defs = dg.Definitions(assets=[view_asset(view) for view in VIEWS], sensors=[refresh_views])
