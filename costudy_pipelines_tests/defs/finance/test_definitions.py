"""How the finance and monitoring definitions sit in the project's graph: view dependencies,
sheet patterns resolved against the merged definitions, freshness on the source assets,
blocking reconciliation. No `from __future__ import annotations`: the stand-in assets
annotate `context`."""

from datetime import timedelta

import dagster as dg

from costudy_pipelines.definitions import project_definitions, project_policies
from costudy_pipelines.defs.resources import defs as resource_defs
from costudy_pipelines.defs.sync_health import defs as health_defs
from costudy_pipelines.defs.warehouse_views import defs as view_defs
from costudy_pipelines.sources.registry import NoCount, load_registry

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
    # the views' refresh sensor also selects the sync-health report
    merged = dg.Definitions.merge(view_defs, health_defs, resource_defs, sources)
    keys = [key.to_user_string() for key in merged.resolve_all_asset_keys()]
    return merged.map_asset_specs(func=project_policies(load_registry(), keys))


def parents(defs: dg.Definitions, key: str) -> set[str]:
    node = defs.resolve_asset_graph().get(dg.AssetKey(key))
    return {parent.to_user_string() for parent in node.parent_keys}


def test_revenue_lines_depends_on_the_schema_each_revenue_source_and_every_sheet():
    defs = merged_with_sources()
    # `upstream: sheet_*` resolved against the assets the definitions hold: the stand-in sheet
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


def test_every_source_feed_gets_its_sources_freshness_policy_and_views_none():
    graph = project_definitions().resolve_asset_graph()
    registry = load_registry()
    for source, feed in registry.feeds():
        policy = graph.get(dg.AssetKey(feed.asset)).freshness_policy
        assert policy is not None, feed.asset
        fail = timedelta(hours=source.source.freshness.fail_hours)
        assert policy.fail_window.to_timedelta() == fail, feed.asset
    assert graph.get(dg.AssetKey("users")).freshness_policy is not None
    assert graph.get(dg.AssetKey("revenue_lines")).freshness_policy is None


def test_every_asset_has_owners_and_each_materializable_one_a_code_reference():
    graph = project_definitions().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners, key
        if node.is_materializable:  # observed tables of other systems have no code here
            assert "dagster/code_references" in node.metadata, key


def test_a_policy_the_users_asset_sets_itself_is_kept():
    own = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2))

    @dg.asset(key="users", freshness_policy=own)
    def users(context: dg.AssetExecutionContext) -> None:
        """Hourly."""

    apply = project_policies(load_registry(), ["users"])
    defs = dg.Definitions(assets=[users]).map_asset_specs(func=apply)
    assert defs.resolve_asset_graph().get(dg.AssetKey("users")).freshness_policy == own


def test_the_project_definitions_hold_every_check_and_block_on_reconciliation():
    graph = project_definitions().resolve_asset_graph()
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    for view in ("revenue_lines", "revenue_by_user_day", "revenue_by_user"):
        assert (view, "reconciles_with_sources") in checks
    for _, feed in load_registry().feeds():
        declared = not isinstance(feed.counts, NoCount)
        assert ((feed.asset, "counts_match_source") in checks) == declared, feed.asset
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
