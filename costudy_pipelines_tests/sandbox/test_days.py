"""advance_day changes every source and reports exactly what it did."""

from __future__ import annotations

from costudy_pipelines.sandbox.changes import diff
from costudy_pipelines.sandbox.generators import SPEC_BY_NAME
from costudy_pipelines.sandbox.world import World, WorldConfig


def snapshot(world: World) -> dict[str, dict[str, dict]]:
    return {s: {entry.key: entry.record for entry in world.entries(s)} for s in world.sources}


def test_each_day_reports_exactly_the_differences() -> None:
    fresh_world = World(WorldConfig(seed=12, people=700))
    for day in (1, 2, 3):
        before = snapshot(fresh_world)
        report = fresh_world.advance_day()
        after = snapshot(fresh_world)
        assert report.day == day
        for source in fresh_world.sources:
            assert report.sources[source] == diff(before[source], after[source]), source


def test_every_source_gains_changes_and_loses_records(fresh_world: World) -> None:
    report = fresh_world.advance_day()
    for source, changes in report.sources.items():
        spec = SPEC_BY_NAME[source]
        assert changes.added, source
        if spec.row_hashed:  # an edited row is a new hash: more hashes leave than are deleted
            deleted_rows = len(fresh_world.deleted(source))
            assert len(changes.deleted) > deleted_rows > 0, source
        else:
            assert changes.changed, source
            assert bool(changes.deleted) == spec.deletable, source


def test_the_new_day_has_records_dated_that_day(fresh_world: World) -> None:
    report = fresh_world.advance_day()
    assert report.date == fresh_world.end_date
    for source in ("whop_payments", "ghl_contacts", "orders", "votes", "releases"):
        added = fresh_world.count(source) - 1
        assert fresh_world.created_at(source, added).date() == report.date, source


def test_deleted_orders_take_their_items_along(fresh_world: World) -> None:
    fresh_world.advance_day()
    deleted_orders = {index + 1 for index in fresh_world.deleted("orders")}
    assert deleted_orders
    live_items = list(fresh_world.records("order_items"))
    live_orders = {record["id"] for record in fresh_world.records("orders")}
    assert all(item["order_id"] in live_orders for item in live_items)
    assert not {item["order_id"] for item in live_items} & deleted_orders
