"""The unified users table: one user per normalised email, fed by every source sync."""

import dagster as dg

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib import quality
from costudy_pipelines.sources.registry import load_registry


@dg.asset(
    deps=[dg.AssetKey(feed.asset) for _, feed in load_registry().feeds()],
    group_name="warehouse",
    kinds={"postgres"},
    description="One row per normalised email. Every source sync upserts it (names by source "
    "priority, GHL > Whop > Sheet by default, with provenance); this asset reports on it.",
)
def users(warehouse_db: PostgresResource) -> dg.MaterializeResult:
    with warehouse_db.connect() as conn:
        summary = quality.user_summary(conn)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary["users"],
            "name_won_by_source": dg.MetadataValue.json(summary["name_source"]),
        }
    )


@dg.asset_check(asset=users, blocking=True)
def one_user_per_email(warehouse_db: PostgresResource) -> dg.AssetCheckResult:
    """No two users share an email once normalised, and every stored email is normalised."""
    with warehouse_db.connect() as conn:
        duplicates = quality.duplicate_emails(conn)
        unnormalised = quality.unnormalised_emails(conn)
    return dg.AssetCheckResult(
        passed=duplicates.ok and unnormalised.ok,
        metadata={
            "duplicate_emails": duplicates.count,
            "duplicate_samples": duplicates.samples,
            "unnormalised_emails": unnormalised.count,
            "unnormalised_samples": unnormalised.samples,
        },
    )


defs = dg.Definitions(assets=[users], asset_checks=[one_user_per_email])
