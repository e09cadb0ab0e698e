"""Freshness policies of the source assets and the unified users table (SPEC §4 monitoring).

Syncs run daily: a source whose last materialization is more than 26 hours old warns (one
run late), more than 30 hours old fails (the day's run is missing). definitions.py applies
them to the merged Definitions with `with_source_freshness`, so the policies live here and the
source assets (defs/sources/) need not know them. Sheets are `sheet_<name>` per configured
sheet, hence the pattern.
"""

import warnings
from collections.abc import Callable
from datetime import timedelta
from fnmatch import fnmatch

import dagster as dg

DAILY_SYNC = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=30), warn_window=timedelta(hours=26)
)

SOURCE_FRESHNESS: dict[str, dg.FreshnessPolicy] = {
    key: DAILY_SYNC
    for key in (
        "whop_payments",
        "whop_memberships",
        "whop_users",
        "ghl_contacts",
        "sheet_*",
        "elective_rows",
        "website_votes",
        "website_demo_requests",
        "website_email_subscriptions",
        "website_contact_submissions",
        "platform_users",
        "course_orders",
        "course_enrollments",
        "users",
    )
}
"""Asset key (or `prefix*` pattern) → freshness policy."""


def freshness_for(key: dg.AssetKey) -> dg.FreshnessPolicy | None:
    name = key.to_user_string()
    return next(
        (policy for pattern, policy in SOURCE_FRESHNESS.items() if fnmatch(name, pattern)), None
    )


def map_specs(defs: dg.Definitions, func: Callable[[dg.AssetSpec], dg.AssetSpec]) -> dg.Definitions:
    """Definitions.map_asset_specs, Dagster's documented way to set policies across merged
    definitions; it is marked preview in 1.13, which would warn on every code-location load."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_asset_specs(func=func)


def with_source_freshness(defs: dg.Definitions) -> dg.Definitions:
    """`defs` with SOURCE_FRESHNESS set on every asset it names; a policy set in code wins."""

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        policy = freshness_for(spec.key)
        if policy is None:
            return spec
        return dg.apply_freshness_policy(spec, policy, overwrite_existing=False)

    return map_specs(defs, apply)
