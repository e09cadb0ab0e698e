"""The unified users table: one user per normalised email, fed by every source sync."""

import dagster as dg

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib import quality
from costudy_pipelines.sources.registry import Registry

USERS_KEY = dg.AssetKey("users")


def users(warehouse_db: PostgresResource) -> dg.MaterializeResult:
    """One row per normalised email. Every source sync upserts it (names by source priority,
    GHL > Whop > Sheets by default, with provenance); this asset reports on it."""
    with warehouse_db.connect() as conn:
        summary = quality.user_summary(conn)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary["users"],
            "name_won_by_source": dg.MetadataValue.json(summary["name_source"]),
        }
    )


@dg.asset_check(asset=USERS_KEY, blocking=True)
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


def build_defs(registry: Registry) -> dg.Definitions:
    """`users`, fed by every registered feed (whose sessions upsert it), and its check."""
    asset = dg.asset(
        name="users",
        deps=[dg.AssetKey(feed.asset) for _, feed in registry.feeds()],
        group_name="warehouse",
        kinds={"postgres"},
    )(users)
    return dg.Definitions(assets=[asset], asset_checks=[one_user_per_email])
