"""Records have the shapes the real APIs return."""

from __future__ import annotations

from datetime import datetime

from costudy_pipelines.sandbox.spreadsheets import spreadsheets
from costudy_pipelines.sandbox.world import World, WorldConfig


def test_whop_money_fields_come_as_float_money_object_or_both() -> None:
    assert World(WorldConfig(seed=2, people=5)).config.money_format == "money"  # pinned shape

    def forms(money_format: str) -> set[str]:
        world = World(WorldConfig(seed=2, people=300, money_format=money_format))
        seen = set()
        for entry in world.entries("whop_payments"):
            for field in ("usd_total", "total", "subtotal", "refunded_amount"):
                value = entry.record[field]
                if isinstance(value, dict):
                    assert set(value) == {"amount", "currency", "decimals", "display_decimals"}
                    seen.add("money")
                elif isinstance(value, float):
                    seen.add("float")
        return seen

    assert forms("float") == {"float"}
    assert forms("money") == {"money"}
    assert forms("mixed") == {"float", "money"}


def test_whop_payments_have_the_pinned_shape(world: World) -> None:
    """The payer's email in customer_email, an embedded user without one, flat *_id fields."""
    for entry in world.entries("whop_payments"):
        record = entry.record
        assert "email" not in record["user"] and "customer_email" in record
        assert {"membership_id", "product_id", "plan_id", "member_id"} <= set(record)
        assert not {"membership", "product", "plan", "member", "company"} & set(record)
    statuses = {e.record["status"] for e in world.entries("whop_payments")}
    assert {"paid", "open", "void"} <= statuses
    substatuses = {e.record["substatus"] for e in world.entries("whop_payments")}
    assert "refunded" in substatuses
    currencies = {e.record["currency"] for e in world.entries("whop_payments")}
    assert currencies == {"usd", "eur", "gbp"}


def test_ghl_contacts_span_locations_with_their_fields(world: World) -> None:
    contacts = [e.record for e in world.entries("ghl_contacts") if not e.reject]
    assert {c["locationId"] for c in contacts} == set(world.ghl_locations)
    for contact in contacts:
        assert contact["name"] == f"{contact['firstName']} {contact['lastName']}"
        datetime.fromisoformat(contact["dateAdded"].replace("Z", "+00:00"))
        assert all(set(field) == {"id", "value"} for field in contact["customFields"])


def test_sheets_values_are_ragged_strings_with_header_first() -> None:
    world = World(WorldConfig(seed=4, people=800, delete_rate=0.05))  # some rows get cleared
    world.advance_day()
    books = spreadsheets(world)
    assert len(books) >= 2
    data_rows = 0
    for book in books.values():
        for values in book["worksheets"].values():
            header, rows = values[0], values[1:]
            assert header and all(isinstance(cell, str) for cell in header)
            assert values[-1], "trailing empty rows are trimmed"
            for row in rows:
                assert all(isinstance(cell, str) for cell in row)
                assert not row or row[-1] != "", "trailing empty cells are trimmed"
                assert len(row) <= len(header)
            data_rows += sum(1 for row in rows if row)
    assert any(len(row) < len(values[0]) for b in books.values()
               for values in b["worksheets"].values() for row in values[1:] if row)  # fmt: skip
    assert any(not row for b in books.values() for v in b["worksheets"].values() for row in v)
    assert data_rows == world.live_count("sheet_rows")
