"""The world is deterministic, knows its malformed records, and has the variety syncs need."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from costudy_pipelines.sandbox.dump import dump_world
from costudy_pipelines.sandbox.people import person
from costudy_pipelines.sandbox.population import SOURCE_FAMILY
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines_tests.sandbox.checks import problems, raw_email

from .support import SMALL


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_same_seed_same_world_byte_for_byte(tmp_path: Path) -> None:
    config = WorldConfig(seed=5, people=400)
    first, second = World(config), World(config)
    assert first.fingerprint() == second.fingerprint()
    assert first.advance_day().to_dict() == second.advance_day().to_dict()
    dump_world(first, tmp_path / "a")
    dump_world(second, tmp_path / "b")
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert World(WorldConfig(seed=6, people=400)).fingerprint() != World(config).fingerprint()
    assert first.fingerprint() != World(config).fingerprint()  # the day changed it


def test_about_one_percent_malformed_and_the_world_knows_why(world: World) -> None:
    total = rejected = 0
    for source in world.sources:
        for entry in world.entries(source):
            total += 1
            found = problems(source, entry.record)
            if entry.reject:
                rejected += 1
                assert found == {entry.reject}, (source, entry.key, entry.record)
            else:
                assert not found, (source, entry.key, entry.record)
    assert 0.006 < rejected / total < 0.015, (rejected, total)
    kinds = Counter(e.reject for s in world.sources for e in world.entries(s) if e.reject)
    assert set(kinds) == {"missing_email", "invalid_email", "bad_amount", "bad_date"}


def valid_emails(world: World) -> Iterator[tuple[str, str]]:
    """(source, email as written) of every valid record that has an email."""
    for source in world.sources:
        for entry in world.entries(source):
            email = raw_email(source, entry.record)
            if email and not entry.reject:
                yield source, email


def test_about_half_the_people_are_in_two_or_more_sources(world: World) -> None:
    families: dict[int, set[str]] = defaultdict(set)
    for source in world.sources:
        for entry in world.entries(source):
            if entry.person is not None:
                families[entry.person].add(SOURCE_FAMILY[source])
    several = sum(1 for found in families.values() if len(found) >= 2)
    assert 0.4 < several / len(families) < 0.6


def test_some_people_use_other_addresses_in_other_sources(world: World) -> None:
    """About 13 % of people have two or three addresses; each address is one person's, and
    each family of a person sees one of them."""
    owners: dict[str, set[int]] = defaultdict(set)
    seen: dict[tuple[int, str], set[str]] = defaultdict(set)
    for source in world.sources:
        for entry in world.entries(source):
            email = raw_email(source, entry.record)
            if entry.person is None or not email or entry.reject:
                continue
            owners[email.strip().lower()].add(entry.person)
            seen[entry.person, SOURCE_FAMILY[source]].add(email.strip().lower())
    assert all(len(people) == 1 for people in owners.values())
    assert all(len(emails) == 1 for emails in seen.values())
    addresses: dict[int, set[str]] = defaultdict(set)
    for email, people in owners.items():
        addresses[next(iter(people))].add(email)
    counts = Counter(len(found) for found in addresses.values())
    assert 0.08 < (counts[2] + counts[3]) / len(addresses) < 0.18, counts
    assert counts[3] > 0 and set(counts) == {1, 2, 3}


def test_names_carry_typos_and_nicknames_in_some_families(world: World) -> None:
    spellings: dict[int, set[str]] = defaultdict(set)
    for entry in world.entries("ghl_contacts"):
        if entry.person is not None:
            spellings[entry.person].add(entry.record["firstName"] + " " + entry.record["lastName"])
    people = [person(world.seed, index) for index in spellings]
    varied = [who for who in people if spellings[who.index] != {f"{who.first} {who.last}"}]
    lower = [w for w in varied if spellings[w.index] == {f"{w.first} {w.last}".lower()}]
    typos_or_nicknames = [who for who in varied if who not in lower]
    assert 0.02 < len(typos_or_nicknames) / len(people) < 0.15, len(typos_or_nicknames)


def test_emails_vary_in_case_and_whitespace_for_the_same_person(world: World) -> None:
    spellings: dict[str, set[str]] = defaultdict(set)
    for _, email in valid_emails(world):
        spellings[email.strip().lower()].add(email)
    variants = [found for found in spellings.values() if len(found) > 1]
    assert len(variants) > len(spellings) * 0.1
    every = {email for found in spellings.values() for email in found}
    assert any(email != email.strip() for email in every)
    assert any(email.strip() != email.strip().lower() for email in every)


def test_names_differ_between_ghl_whop_and_sheets(world: World) -> None:
    names: dict[str, dict[str, str]] = defaultdict(dict)
    for source, read in (
        ("ghl_contacts", lambda r: r["name"]),
        ("whop_users", lambda r: r["name"]),
        ("sheet_rows", lambda r: r["values"].get("Name") or r["values"].get("Full Name")),
    ):
        for entry in world.entries(source):
            email = raw_email(source, entry.record)
            if email and not entry.reject and read(entry.record):
                names[email.strip().lower()][source] = read(entry.record)
    shared = [by_source for by_source in names.values() if len(by_source) >= 2]
    differing = [by_source for by_source in shared if len(set(by_source.values())) > 1]
    assert shared and len(differing) >= len(shared) * 0.2


def test_exact_duplicates_exist_where_sources_have_no_ids(world: World) -> None:
    for source in ("sheet_rows", "elective_rows"):
        keys = Counter(entry.key for entry in world.entries(source))
        assert any(count > 1 for count in keys.values()), source
    for source in ("votes", "demo_requests", "contact_submissions"):
        contents = Counter(
            tuple(sorted((k, str(v)) for k, v in entry.record.items() if k != "id"))
            for entry in world.entries(source)
        )
        assert any(count > 1 for count in contents.values()), source


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    return []


def test_text_fields_carry_unicode_and_sql_metacharacters(world: World) -> None:
    text = "\n".join(
        "\n".join(strings(entry.record)) for s in world.sources for entry in world.entries(s)
    )
    for needle in ("O'Brien", "DROP TABLE", "李", "Zoë", "🎉", "\\", '"', "\t"):
        assert needle in text, needle


def test_index_order_is_creation_order_and_dates_cover_every_day(world: World) -> None:
    for source in ("whop_payments", "ghl_contacts", "orders", "sheet_rows"):
        times = [world.created_at(source, entry.index) for entry in world.entries(source)]
        assert times == sorted(times), source
        days = {moment.date() for moment in times}
        assert len(days) >= SMALL.days * 0.9, (source, len(days))
    for entry in world.entries("whop_payments"):
        if not entry.reject:
            stamp = datetime.fromisoformat(entry.record["created_at"].replace("Z", "+00:00"))
            assert stamp == world.created_at("whop_payments", entry.index)


def test_config_sized_for_a_record_count_lands_near_it() -> None:
    config = WorldConfig.for_records(20_000, seed=3)
    world = World(config)
    total = sum(world.count(source) for source in world.sources)
    assert 18_000 < total < 22_000
