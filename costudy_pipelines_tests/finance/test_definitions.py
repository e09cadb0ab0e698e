"""How the finance and monitoring definitions sit in the project's graph: view dependencies,
sheet patterns resolved against the merged definitions, freshness on the source assets,
blocking reconciliation. No `from __future__ import annotations`: the stand-in assets
annotate `context`."""

from datetime import timedelta

import dagster as dg

from costudy_pipelines.definitions import defs as project_defs
from costudy_pipelines.defs.freshness import DAILY_SYNC, SOURCE_FRESHNESS, with_source_freshness
from costudy_pipelines.defs.resources import defs as resource_defs
from costudy_pipelines.defs.warehouse_views import defs as view_defs
from costudy_pipelines.defs.warehouse_views import with_pattern_deps

SOURCE_KEYS = [
    "whop_payments",
    "ghl_contacts",
    "sheet_ledger_payments",
    "elective_rows",
    "website_votes",
    "platform_users",
    "course_orders",
    "users",
]


def stand_in(key: str) -> dg.AssetsDefinition:
    @dg.asset(key=key)
    def source(context: dg.AssetExecutionContext) -> None:
        """A stand-in for the lead's source asset of the same key."""

    return source


def merged_with_sources() -> dg.Definitions:
    sources = dg.Definitions(assets=[stand_in(key) for key in SOURCE_KEYS])
    merged = dg.Definitions.merge(view_defs, resource_defs, sources)
    return with_pattern_deps(with_source_freshness(merged))


def parents(defs: dg.Definitions, key: str) -> set[str]:
    node = defs.resolve_asset_graph().get(dg.AssetKey(key))
    return {parent.to_user_string() for parent in node.parent_keys}


def test_revenue_lines_depends_on_the_schema_each_revenue_source_and_every_sheet():
    defs = merged_with_sources()
    assert parents(defs, "revenue_lines") == {
        "warehouse_schema_dev",
        "whop_payments",
        "elective_rows",
        "course_orders",
        "sheet_ledger_payments",
    }
    assert parents(defs, "revenue_by_user_day") == {
        "warehouse_schema_dev",
        "revenue_lines",
        "users",
    }
    assert parents(defs, "sync_health") == {"warehouse_schema_dev", "sync_runs"}


def test_every_source_asset_gets_its_freshness_policy_and_views_none():
    graph = merged_with_sources().resolve_asset_graph()
    for key in SOURCE_KEYS:
        policy = graph.get(dg.AssetKey(key)).freshness_policy
        assert policy == DAILY_SYNC, key
    assert graph.get(dg.AssetKey("revenue_lines")).freshness_policy is None
    assert DAILY_SYNC.fail_window.to_timedelta() == timedelta(hours=30)
    assert len(SOURCE_FRESHNESS) == 14  # every source key the lead defines, sheets as a pattern


def test_a_policy_set_by_the_source_itself_is_kept():
    own = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2))

    @dg.asset(key="whop_payments", freshness_policy=own)
    def whop_payments(context: dg.AssetExecutionContext) -> None:
        """Hourly."""

    defs = with_source_freshness(dg.Definitions(assets=[whop_payments]))
    assert defs.resolve_asset_graph().get(dg.AssetKey("whop_payments")).freshness_policy == own


def test_the_project_definitions_hold_every_check_and_block_on_reconciliation():
    graph = project_defs.resolve_asset_graph()
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    for view in ("revenue_lines", "revenue_by_user_day", "revenue_by_user"):
        assert (view, "reconciles_with_sources") in checks
    for source in ("whop_payments", "ghl_contacts", "website_votes", "course_enrollments"):
        assert (source, "counts_match_source") in checks
    for name in (
        "platform_people_in_warehouse",
        "warehouse_people_in_platform",
        "platform_emails_agree",
        "platform_names_agree",
    ):
        assert ("platform_users", name) in checks
    reconciliation = [
        key for key in graph.asset_check_keys if key.name == "reconciles_with_sources"
    ]
    assert len(reconciliation) == 3
    assert all(graph.get_check_spec(key).blocking for key in reconciliation)
    assert "sync_health_report" in {key.to_user_string() for key in graph.get_all_asset_keys()}
