"""The ground truth the sync tests compare against agrees with an independent reading."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from costudy_pipelines.sandbox.generators.base import row_hash
from costudy_pipelines.sandbox.ground_truth import ground_truth
from costudy_pipelines.sandbox.world import World
from costudy_pipelines_tests.sandbox.checks import problems, raw_email


def test_users_keys_and_rejects_match_an_independent_reading(world: World) -> None:
    truth = ground_truth(world)
    emails: set[str] = set()
    for source in world.sources:
        keys, rejects, unattributed = set(), {}, set()
        for entry in world.entries(source):
            found = problems(source, entry.record)
            if found:
                rejects[entry.key] = found.pop()
                continue
            email = raw_email(source, entry.record)
            if source == "elective_rows" and email is None:
                unattributed.add(entry.key)
                continue
            keys.add(entry.key)
            if email is not None:
                emails.add(email.strip().lower())
        assert truth.keys[source] == keys, source
        assert truth.rejects[source] == rejects, source
        assert truth.unattributed[source] == unattributed, source
    assert truth.users() == emails
    assert truth.unattributed["elective_rows"]


def test_row_hashes_collapse_duplicates_and_can_be_replaced(world: World) -> None:
    truth = ground_truth(world)
    rows = [e for e in world.entries("sheet_rows") if not e.reject]
    assert len(truth.keys["sheet_rows"]) < len(rows)  # exact duplicates stored once
    assert {row_hash(e.record["values"]) for e in rows} == truth.keys["sheet_rows"]
    custom = ground_truth(world, row_key=lambda record: "|".join(record["values"].values()))
    assert custom.keys["sheet_rows"] == {"|".join(e.record["values"].values()) for e in rows}
    assert custom.keys["whop_payments"] == truth.keys["whop_payments"]


def test_names_follow_priority_ghl_then_whop_then_sheet(world: World) -> None:
    truth = ground_truth(world)
    seen: dict[str, dict[str, str]] = defaultdict(dict)
    for source, family, read in (
        ("ghl_contacts", "ghl", lambda r: r["name"]),
        ("whop_users", "whop", lambda r: r["name"]),
        ("whop_payments", "whop", lambda r: r["user"]["name"]),
        ("sheet_rows", "sheets", lambda r: r["values"].get("Name") or r["values"].get("Full Name")),
    ):
        for entry in world.entries(source):
            if not entry.reject and read(entry.record):
                # Whop users show no email: theirs is the one their member record has
                shown = raw_email(source, entry.record) or world.address(entry.person, family)
                email = shown.strip().lower()
                seen[email][family] = read(entry.record)
    for email, by_family in seen.items():
        winner = next(f for f in ("ghl", "whop", "sheets") if f in by_family)
        assert truth.names[email].family == winner, email
        assert truth.names[email].name == by_family[winner], email
    families = {choice.family for choice in truth.names.values()}
    assert families == {"ghl", "whop", "sheets"}


def test_paid_whop_revenue_reconciles_with_the_payments(world: World) -> None:
    truth = ground_truth(world)
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for entry in world.entries("whop_payments"):
        record = entry.record
        if entry.reject or record["status"] != "paid":
            continue
        total = record["total"]
        amount = Decimal(total["amount"]) if isinstance(total, dict) else Decimal(str(total))
        expected[record["currency"].upper()] += amount
    got = {
        currency: totals.amount
        for (source, currency, status), totals in truth.revenue.items()
        if source == "whop_payments" and status == "paid"
    }
    assert got == dict(expected)
    assert set(got) == {"USD", "EUR", "GBP"}


def test_same_person_pairs_are_the_addresses_of_one_person(world: World) -> None:
    truth = ground_truth(world)
    by_person: dict[int, set[str]] = defaultdict(set)
    for source in world.sources:
        for entry in world.entries(source):
            email = raw_email(source, entry.record)
            if source == "platform_users":  # a sync target, keyed by the account's email
                email = entry.record["email"]
            if entry.person is not None and email and not problems(source, entry.record):
                by_person[entry.person].add(email.strip().lower())
    expected = {(a, b) for emails in by_person.values() for a in emails for b in emails if a < b}
    assert truth.same_person_pairs() == expected and expected
    some = set(sorted(truth.users())[:200])
    assert truth.same_person_pairs(some) == {(a, b) for a, b in expected if {a, b} <= some}
    owner = truth.person_of()
    assert all(owner[a] == owner[b] for a, b in expected)
