"""`counts_match_source` on every source feed: per synced partition (UTC day), the warehouse's
rows (stored + kept as rejects) equal what the source holds. What it compares against is what
the feed declares in its source's spec.py (`Feed.counts`):

- DatabaseCount: the source database itself, through its resource: counts per created_at day
  and samples of ids missing on either side.
- ReportedCount: the count the API reported for the partition, which the source asset puts
  in its materialization metadata under `source_reported_count`. The latest materialization
  of each partition is read from the Dagster instance. A partition for which the API gave no
  count says why under `source_count_missing`: the check fails (WARN) naming those days,
  instead of passing for want of a count.
- NoCount: nothing independent to count against (the source is read whole, or its API
  reports no totals); the feed carries no such check, and its declaration says why.
"""

from dataclasses import dataclass, field
from datetime import date

import dagster as dg

from costudy_pipelines.defs._feed_check import FeedCheck, FeedCheckContext
from costudy_pipelines.defs._metadata import Metadata, metadata_table
from costudy_pipelines.lib.count_comparison import (
    CountComparison,
    WarehouseFeed,
    as_day,
    compare_database,
    compare_reported,
    synced_days,
)
from costudy_pipelines.lib.crossdb import Found
from costudy_pipelines.lib.loading import LoadSpec
from costudy_pipelines.sources.registry import DatabaseCount, Feed, NoCount, ReportedCount

REPORTED_COUNT = "source_reported_count"
MISSING_COUNT = "source_count_missing"
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


def warehouse_feed(spec: LoadSpec) -> WarehouseFeed:
    # Website rows are stored under '<event kind>:<id>' (WebsitePersonValidator).
    kind = spec.scope.get("event_kind")
    return WarehouseFeed(spec.name, spec.table, dict(spec.scope), f"{kind}:" if kind else "")


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


def database_count_check(
    asset_key: dg.AssetKey, spec: LoadSpec, counted: DatabaseCount
) -> FeedCheck:
    resource_key, source_table = counted.database, counted.table
    feed = warehouse_feed(spec)

    def check(shared: FeedCheckContext) -> dg.AssetCheckResult:
        with (
            getattr(shared.context.resources, resource_key).connect(autocommit=True) as source,
            shared.warehouse.connect(autocommit=True) as warehouse,
        ):
            comparison = compare_database(
                source, source_table, warehouse, feed, synced_days(warehouse, feed)
            )
        return _result(comparison)

    description = (
        f"Per synced day: {source_table.table} rows in the source database equal the "
        f"warehouse's {feed.table} rows plus rejects; samples of ids missing on each side."
    )
    return FeedCheck(
        dg.AssetCheckSpec(CHECK_NAME, asset=asset_key, description=description),
        check,
        frozenset({resource_key, "warehouse_db"}),
    )


@dataclass
class ReportedCounts:
    """What the latest materialization of each day partition said about the source's count."""

    counts: dict[date, int] = field(default_factory=dict)
    missing: dict[date, str] = field(default_factory=dict)  # why a count-reporting API gave none
    unreported: int = 0  # partitions that said nothing


def reported_counts(instance: dg.DagsterInstance, key: dg.AssetKey) -> ReportedCounts:
    """The count each day partition's latest materialization reported, why it is missing where
    the source said so, and how many partitions said nothing."""
    found = ReportedCounts()
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
            missing = materialization.metadata.get(MISSING_COUNT)
            day = as_day(partition)
            if day is None:
                continue
            # sync_daily records the count as an int (IntMetadataValue)
            count = value.value if isinstance(value, dg.IntMetadataValue) else None
            if count is not None:
                found.counts[day] = count
            elif missing is not None:
                found.missing[day] = str(missing.value)
            else:
                found.unreported += 1
        read += len(page.records)
        if not page.has_more:
            break
        cursor = page.cursor
    return found


def api_count_check(asset_key: dg.AssetKey, spec: LoadSpec) -> FeedCheck:
    feed = warehouse_feed(spec)

    def check(shared: FeedCheckContext) -> dg.AssetCheckResult:
        found = reported_counts(shared.context.instance, asset_key)
        reported, unreported = found.counts, found.unreported
        with shared.warehouse.connect(autocommit=True) as warehouse:
            comparison = compare_reported(warehouse, feed, reported)
        result = _result(comparison, partitions_without_count=unreported + len(found.missing))
        if found.missing:  # the API reports counts, but gave none for these days
            days = sorted(found.missing)[:DAYS_SHOWN]
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    **result.metadata,
                    "days_without_count": len(found.missing),
                    "problem": "; ".join(f"{day}: {found.missing[day]}" for day in days),
                },
            )
        if not reported:
            # Nothing to compare is not agreement: warn, and say why, never a silent green.
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    **result.metadata,
                    "skipped": f"no partition reported `{REPORTED_COUNT}`: nothing compared",
                },
            )
        if unreported:  # some days reported a count and others not: those cannot be reconciled
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={**result.metadata, "problem": f"no `{REPORTED_COUNT}` reported"},
            )
        return result

    description = (
        f"Per materialized day: the count the API reported (`{REPORTED_COUNT}` in the "
        f"materialization metadata) equals the warehouse's {feed.table} rows plus rejects."
    )
    return FeedCheck(dg.AssetCheckSpec(CHECK_NAME, asset=asset_key, description=description), check)


def counts_check(asset_key: dg.AssetKey, feed: Feed) -> list[FeedCheck]:
    """The count comparison `feed` declares; none for NoCount (its reason documents why: a
    check that could only ever skip would be noise, and a green one a lie)."""
    match feed.counts:
        case DatabaseCount():
            return [database_count_check(asset_key, feed.load, feed.counts)]
        case ReportedCount():
            return [api_count_check(asset_key, feed.load)]
        case NoCount():
            return []
    raise TypeError(f"{feed.asset}: unknown counts declaration {feed.counts!r}")
