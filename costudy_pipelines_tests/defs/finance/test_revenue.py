"""The revenue views: their totals against the world's ground truth, and the reconciliation
check, which passes on a clean warehouse and fails (blocking downstream) on a wrong view."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from costudy_pipelines.defs.warehouse_views import view_asset
from costudy_pipelines.lib.finance import ALL_SOURCES, Totals, view_totals
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.lib.views import VIEWS_FOLDER, read_view
from costudy_pipelines.sandbox.ground_truth import ground_truth
from costudy_pipelines.sandbox.world import World
from costudy_pipelines_tests.defs.finance.support import (
    RECONCILIATION_CHECKS,
    VIEW_ASSETS,
    evaluations,
    materialized,
    metadata_value,
    run,
)

REVENUE_VIEWS = ["revenue_lines", "revenue_by_user_day", "revenue_by_user"]
# How each warehouse source appears in the world's ground truth, and the status that counts.
TRUTH = {
    "whop_payments": ("whop_payments", "paid"),
    "sheet_rows": ("sheet_rows", "recorded"),
    "elective_rows": ("elective_rows", "Approved"),
    "course_orders": ("orders", "paid"),
}


def expected_totals(world: World) -> dict[tuple[str, str], tuple[int, Decimal, Decimal]]:
    """(source, currency) -> (items, gross, refunded), from what the world knows it made."""
    truth = ground_truth(world)
    expected = {}
    for source, (world_source, status) in TRUTH.items():
        for (name, currency, state), totals in truth.revenue.items():
            if name == world_source and state == status:
                expected[source, currency] = (totals.count, totals.amount, totals.refunded)
    return expected


def as_dict(totals: list[Totals]) -> dict[tuple[str, str], tuple[int, Decimal, Decimal]]:
    return {total.key: (total.items, total.gross, total.refunded) for total in totals}


def revenue_views() -> list[dg.AssetsDefinition]:
    return [VIEW_ASSETS[name] for name in REVENUE_VIEWS]


def test_view_totals_match_the_worlds_ground_truth(dbs, world, instance):
    result = run(dbs, instance, revenue_views())
    assert materialized(result) == set(REVENUE_VIEWS)
    expected = expected_totals(world)
    assert {source for source, _ in expected} == set(TRUTH)  # every source carries revenue
    assert {currency for _, currency in expected} == {"USD", "EUR", "GBP"}
    with connect(dbs.warehouse, source="WAREHOUSE_DB_URL", autocommit=True) as conn:
        assert as_dict(view_totals(conn, "revenue_lines")) == expected
        assert as_dict(view_totals(conn, "revenue_by_user_day")) == expected
        per_currency: dict[tuple[str, str], list] = {}
        for (_, currency), (items, gross, refunded) in expected.items():
            sums = per_currency.setdefault((ALL_SOURCES, currency), [0, Decimal(0), Decimal(0)])
            sums[0], sums[1], sums[2] = sums[0] + items, sums[1] + gross, sums[2] + refunded
        assert as_dict(view_totals(conn, "revenue_by_user")) == {
            key: tuple(sums) for key, sums in per_currency.items()
        }


def test_materialization_shows_totals_and_a_daily_chart(dbs, instance):
    result = run(dbs, instance, revenue_views())
    by_day = result.asset_materializations_for_node("revenue_by_user_day")[0].metadata
    totals = by_day["totals"].value.records
    assert {(row.data["source"], row.data["currency"]) for row in totals} >= {
        ("whop_payments", "USD"),
        ("course_orders", "EUR"),
    }
    chart = by_day["revenue_per_day"].value
    assert chart.count("| 20") >= 20  # a bar row per day of the world (2024-...)
    assert "█" in chart and "USD" in chart and "GBP" in chart
    assert by_day["net_usd"].value > by_day["net_gbp"].value > 0


def test_reconciliation_passes_on_a_clean_warehouse(dbs, instance):
    result = run(dbs, instance, revenue_views() + RECONCILIATION_CHECKS)
    found = evaluations(result)
    assert {key for key in found} == {(view, "reconciles_with_sources") for view in REVENUE_VIEWS}
    for evaluation in found.values():
        assert evaluation.passed, evaluation.metadata["details"]
        assert metadata_value(evaluation, "differences") == 0


def test_a_wrong_view_file_fails_reconciliation_and_blocks_downstream(dbs, instance, tmp_path):
    """A revenue_lines.sql that lost its Whop status filter counts open and void payments."""
    text = (VIEWS_FOLDER / "revenue_lines.sql").read_text()
    assert "lower(btrim(p.status)) = 'paid'" in text
    broken = tmp_path / "revenue_lines.sql"
    broken.write_text(text.replace("lower(btrim(p.status)) = 'paid'", "true"))
    lines_check = next(c for c in RECONCILIATION_CHECKS if "revenue_lines" in str(c.check_keys))
    definitions = [view_asset(read_view(Path(broken))), VIEW_ASSETS["revenue_by_user_day"]]
    result = run(dbs, instance, [*definitions, lines_check])
    evaluation = evaluations(result)["revenue_lines", "reconciles_with_sources"]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    mismatches = metadata_value(evaluation, "mismatches").records
    assert {row.data["source"] for row in mismatches} == {"whop_payments"}
    assert all(row.data["view_items"] > row.data["source_items"] for row in mismatches)
    assert materialized(result) == {"revenue_lines"}  # revenue_by_user_day waited


def test_a_view_edited_by_hand_in_the_database_fails_reconciliation(dbs, instance):
    run(dbs, instance, revenue_views())
    text = (VIEWS_FOLDER / "revenue_by_user_day.sql").read_text()
    assert "sum(l.refunded) as refunded" in text
    with connect(dbs.warehouse, source="WAREHOUSE_DB_URL", autocommit=True) as conn:
        conn.execute(text.replace("sum(l.refunded) as refunded", "0::numeric as refunded"))
    result = run(
        dbs,
        instance,
        revenue_views() + RECONCILIATION_CHECKS,
        selection=dg.AssetSelection.checks_for_assets(*revenue_views()),
    )
    found = evaluations(result)
    assert not found["revenue_by_user_day", "reconciles_with_sources"].passed
    details = metadata_value(found["revenue_by_user_day", "reconciles_with_sources"], "details")
    assert "whop_payments USD" in details  # the only source with refunds
    assert found["revenue_lines", "reconciles_with_sources"].passed
    assert not found["revenue_by_user", "reconciles_with_sources"].passed  # built on the daily


@pytest.mark.parametrize("delta", [Decimal("0.01"), Decimal("-125.50")])
def test_views_are_live_a_source_update_moves_them_and_they_still_reconcile(dbs, instance, delta):
    """A view is not a snapshot: an amount changed at the source after the view asset ran is
    in the view at once (to the cent), so reconciliation still passes."""
    run(dbs, instance, revenue_views())
    with connect(dbs.warehouse, source="WAREHOUSE_DB_URL", autocommit=True) as conn:
        before = as_dict(view_totals(conn, "revenue_lines"))
        conn.execute(
            "update whop_payments set amount = amount + %s where id = (select min(id)"
            " from whop_payments where status = 'paid' and currency = 'eur'"
            " and deleted_at is null)",
            (delta,),
        )
        after = as_dict(view_totals(conn, "revenue_lines"))
    items, gross, refunded = before["whop_payments", "EUR"]
    assert after["whop_payments", "EUR"] == (items, gross + delta, refunded)
    result = run(
        dbs,
        instance,
        RECONCILIATION_CHECKS,
        selection=dg.AssetSelection.checks_for_assets(*revenue_views()),
    )
    assert all(evaluation.passed for evaluation in evaluations(result).values())
