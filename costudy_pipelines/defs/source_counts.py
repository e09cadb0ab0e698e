"""`counts_match_source` (WARN) on every daily-partitioned source asset: per synced partition
(UTC day), the warehouse's rows (stored + kept as rejects) equal what the source holds.

- Database sources (website events, platform users, course orders and enrollments): the
  source database itself, through its resource: counts per created_at day and samples of ids
  missing on either side.
- API sources (Whop, GoHighLevel): the count the API reported for the partition, which the
  source asset puts in its materialization metadata under `source_reported_count` (int:
  Whop's total_count, the GoHighLevel search's total, summed over locations). The latest
  materialization of each partition is read from the Dagster instance.
"""

from datetime import date

import dagster as dg

from costudy_pipelines.defs.connections import Metadata, database, metadata_table
from costudy_pipelines.lib.clients import databases as extracts
from costudy_pipelines.lib.crossdb import Found
from costudy_pipelines.lib.loading import SourceSpec, sources
from costudy_pipelines.lib.source_counts import (
    CountComparison,
    SourceTable,
    WarehouseFeed,
    as_day,
    compare_database,
    compare_reported,
    synced_days,
)

REPORTED_COUNT = "source_reported_count"
CHECK_NAME = "counts_match_source"
MAX_MATERIALIZATIONS_READ = 5000  # newest first; ~13 years of daily partitions
DAYS_SHOWN = 20
DAY_COLUMNS = {
    "day": "string",
    "source": "int",
    "stored": "int",
    "rejected": "int",
    "difference": "int",
}


def warehouse_feed(spec: SourceSpec) -> WarehouseFeed:
    # Website rows are stored under '<event kind>:<id>' (WebsitePersonValidator).
    kind = spec.scope.get("event_kind")
    return WarehouseFeed(spec.name, spec.table, dict(spec.scope), f"{kind}:" if kind else "")


def _table(extract: extracts.TableExtract) -> SourceTable:
    return SourceTable(extract.table, extract.created_column, extract.id_column)


# asset key -> (resource of the source database, where the source keeps the rows, the feed)
DATABASE_FEEDS: dict[str, tuple[str, SourceTable, SourceSpec]] = {
    "website_votes": ("website_db", _table(extracts.WEBSITE_VOTES), sources.website_people("vote")),
    "website_demo_requests": (
        "website_db",
        _table(extracts.WEBSITE_DEMO_REQUESTS),
        sources.website_people("demo_request"),
    ),
    "website_email_subscriptions": (
        "website_db",
        _table(extracts.WEBSITE_EMAIL_SUBSCRIPTIONS),
        sources.website_people("email_subscription"),
    ),
    "website_contact_submissions": (
        "website_db",
        _table(extracts.WEBSITE_CONTACT_SUBMISSIONS),
        sources.website_people("contact_submission"),
    ),
    "platform_users": ("platform_db", _table(extracts.PLATFORM_USERS), sources.platform_users()),
    "course_orders": (
        "course_db",
        SourceTable(
            extracts.COURSE_ORDERS.orders_table,
            extracts.COURSE_ORDERS.created_column,
            extracts.COURSE_ORDERS.id_column,
        ),
        sources.course_orders(),
    ),
    "course_enrollments": (
        "course_db",
        _table(extracts.COURSE_ENROLLMENTS),
        sources.course_enrollments(),
    ),
}
API_FEEDS: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        sources.whop_payments(),
        sources.whop_memberships(),
        sources.whop_users(),
        sources.ghl_contacts(),
    )
}


def _sample(found: Found | None) -> str:
    return ", ".join(found.sample) if found and found.sample else "none"


def _result(comparison: CountComparison, **extra: int) -> dg.AssetCheckResult:
    differing = comparison.differing
    rows = [
        {
            "day": day.day.isoformat(),
            "source": day.source,
            "stored": day.stored,
            "rejected": day.rejected,
            "difference": day.accounted - (day.source or 0),
        }
        for day in differing[:DAYS_SHOWN]
    ]
    metadata: Metadata = {
        "days_compared": len(comparison.days),
        "days_differing": len(differing),
        "differing_days": metadata_table(rows, DAY_COLUMNS),
        "source_total": sum(day.source or 0 for day in comparison.days),
        "warehouse_total": sum(day.accounted for day in comparison.days),
        "rejected_total": sum(day.rejected for day in comparison.days),
    }
    for side in ("missing_in_warehouse", "missing_in_source"):
        found = getattr(comparison, side)
        if found is not None:
            metadata[side] = found.count
            metadata[f"{side}_sample"] = _sample(found)
    return dg.AssetCheckResult(
        passed=comparison.agrees,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={**metadata, **extra},
    )


def database_count_check(asset: str) -> dg.AssetChecksDefinition:
    resource_key, source_table, spec = DATABASE_FEEDS[asset]
    feed = warehouse_feed(spec)

    @dg.asset_check(
        asset=dg.AssetKey(asset),
        name=CHECK_NAME,
        required_resource_keys={resource_key, "warehouse_db"},
        description=(
            f"Per synced day: {source_table.table} rows in the source database equal the "
            f"warehouse's {feed.table} rows plus rejects; samples of ids missing on each side."
        ),
    )
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        with (
            database(getattr(context.resources, resource_key)) as source,
            database(context.resources.warehouse_db) as warehouse,
        ):
            comparison = compare_database(
                source, source_table, warehouse, feed, synced_days(warehouse, feed)
            )
        return _result(comparison)

    return check


def reported_counts(instance: dg.DagsterInstance, key: dg.AssetKey) -> tuple[dict[date, int], int]:
    """The count each day partition's latest materialization reported, and how many
    partitions were materialized without reporting one."""
    reported: dict[date, int] = {}
    seen: set[str] = set()
    cursor, read = None, 0
    while read < MAX_MATERIALIZATIONS_READ:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key), limit=500, cursor=cursor
        )
        for record in page.records:
            materialization = record.asset_materialization
            partition = materialization.partition if materialization else None
            if materialization is None or partition is None or partition in seen:
                continue  # newest first: the first record of a partition is its latest
            seen.add(partition)
            value = materialization.metadata.get(REPORTED_COUNT)
            # sync_daily records the count as an int (IntMetadataValue)
            count = value.value if isinstance(value, dg.IntMetadataValue) else None
            day = as_day(partition)
            if count is not None and day is not None:
                reported[day] = count
        read += len(page.records)
        if not page.has_more:
            break
        cursor = page.cursor
    return reported, len(seen) - len(reported)


def api_count_check(asset: str) -> dg.AssetChecksDefinition:
    feed = warehouse_feed(API_FEEDS[asset])

    @dg.asset_check(
        asset=dg.AssetKey(asset),
        name=CHECK_NAME,
        required_resource_keys={"warehouse_db"},
        description=(
            f"Per materialized day: the count the API reported (`{REPORTED_COUNT}` in the "
            f"materialization metadata) equals the warehouse's {feed.table} rows plus rejects."
        ),
    )
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        reported, unreported = reported_counts(context.instance, dg.AssetKey(asset))
        with database(context.resources.warehouse_db) as warehouse:
            comparison = compare_reported(warehouse, feed, reported)
        result = _result(comparison, partitions_without_count=unreported)
        if unreported and not reported:
            # The API gives no totals to reconcile against (Whop's v1 cursor API has none):
            # nothing to compare, which is not a discrepancy. Say so instead of warning forever.
            return dg.AssetCheckResult(
                passed=True,
                metadata={**result.metadata, "note": f"the API reported no `{REPORTED_COUNT}`"},
            )
        if unreported:  # some days reported a count and others not: those cannot be reconciled
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={**result.metadata, "problem": f"no `{REPORTED_COUNT}` reported"},
            )
        return result

    return check


defs = dg.Definitions(
    asset_checks=[database_count_check(asset) for asset in DATABASE_FEEDS]
    + [api_count_check(asset) for asset in API_FEEDS]
)
