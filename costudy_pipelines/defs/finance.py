"""Finance: what the revenue views show in the UI, and their reconciliation with the sources.

The views themselves are assets of warehouse_views (sql/views/revenue_*.sql). Each gets
`reconciles_with_sources` (ERROR, blocking): its totals per source and currency equal, to the
cent and to the item, the sums of the source tables computed independently
(lib/finance.SOURCE_TOTALS_SQL). A failing check stops everything downstream of the view.
"""

from collections.abc import Callable

import dagster as dg
import psycopg

from costudy_pipelines.defs._metadata import Metadata, chart_metadata, metadata_table
from costudy_pipelines.defs.sync_health import REFRESH
from costudy_pipelines.lib.charts import daily_bars
from costudy_pipelines.lib.finance import (
    VIEW_TOTALS_SQL,
    Difference,
    Totals,
    across_sources,
    reconcile,
    revenue_per_day,
    view_totals,
)
from costudy_pipelines.lib.svg_charts import revenue_chart

TOTALS_COLUMNS = {
    "source": "string",
    "currency": "string",
    "items": "int",
    "gross": "float",
    "refunded": "float",
    "net": "float",
}
DIFFERENCE_COLUMNS = {
    "source": "string",
    "currency": "string",
    "view_items": "int",
    "source_items": "int",
    "view_net": "float",
    "source_net": "float",
    "net_difference": "float",
}


def _row(totals: Totals) -> dict:
    return {
        "source": totals.source,
        "currency": totals.key[1],
        "items": totals.items,
        "gross": float(totals.gross),
        "refunded": float(totals.refunded),
        "net": float(totals.net),
    }


def totals_table(totals: list[Totals]) -> dg.MetadataValue:
    ordered = sorted(totals, key=lambda total: total.key)
    return metadata_table([_row(total) for total in ordered], TOTALS_COLUMNS)


def _difference_row(difference: Difference) -> dict:
    view, sources = difference.view, difference.sources
    view_net = view.net if view else 0
    source_net = sources.net if sources else 0
    return {
        "source": difference.source,
        "currency": difference.currency,
        "view_items": view.items if view else 0,
        "source_items": sources.items if sources else 0,
        "view_net": float(view_net),
        "source_net": float(source_net),
        "net_difference": float(view_net - source_net),
    }


def _totals_metadata(view: str) -> Callable[[psycopg.Connection], Metadata]:
    """Totals by source and currency, and net per currency as numbers the UI plots over time."""

    def describe(conn: psycopg.Connection) -> Metadata:
        totals = view_totals(conn, view)
        per_currency = sorted(across_sources(totals), key=lambda total: total.key)
        return {
            "totals": totals_table(totals),
            **{f"net_{total.key[1].lower()}": float(total.net) for total in per_currency},
        }

    return describe


def _by_day_metadata(conn: psycopg.Connection) -> Metadata:
    series = revenue_per_day(conn)
    return {
        **_totals_metadata("revenue_by_user_day")(conn),
        "revenue_per_day": dg.MetadataValue.md(daily_bars(series)),
        **chart_metadata("revenue_chart", revenue_chart(series)),
    }


# What each revenue view's materialization records, by view name (used by warehouse_views).
REVENUE_METADATA = {
    "revenue_lines": _totals_metadata("revenue_lines"),
    "revenue_by_user_day": _by_day_metadata,
    "revenue_by_user": _totals_metadata("revenue_by_user"),
}


def reconciliation_check(view: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(view),
        name="reconciles_with_sources",
        blocking=True,
        required_resource_keys={"warehouse_db"},
        automation_condition=REFRESH,
        description=(
            f"{view} totals equal the source tables' sums per source and currency, to the "
            "cent and to the item (one snapshot); downstream waits while they differ."
        ),
    )
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        with context.resources.warehouse_db.connect(autocommit=True) as conn:
            totals, found = reconcile(conn, view)
        details = "\n".join(f"- {difference.describe()}" for difference in found)
        return dg.AssetCheckResult(
            passed=not found,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "differences": len(found),
                "mismatches": metadata_table(
                    [_difference_row(difference) for difference in found], DIFFERENCE_COLUMNS
                ),
                "view_totals": totals_table(totals),
                "details": dg.MetadataValue.md(details or "view and sources agree"),
            },
        )

    return check


defs = dg.Definitions(asset_checks=[reconciliation_check(view) for view in VIEW_TOTALS_SQL])
