"""The warehouse's users of a world without syncing it: one row per address with the columns
people matching reads (lib/people/matching.py FEATURES_SQL: id, email, name, username,
phone), computed from the people and the population rather than from records, and which rows
are one person. For benchmarks at sizes no sync reaches (a million users); tests of matching
sync a world through the load engine instead.

What it leaves out, compared with a sync: malformed records (a user whose only record is
malformed exists here), spelling variants of emails (the warehouse normalises them away),
renames and advanced days. Names follow the warehouse's name priority (GoHighLevel, Whop,
sheets, platform, Elective, course, website) in each family's style; usernames come from
Whop and the platform; phones from Whop payments, website demo requests and, for four in
five people, GoHighLevel contacts (the share of contacts with a phone).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

from costudy_pipelines.sandbox.draw import Draw
from costudy_pipelines.sandbox.people import Person, display_name, first_last, person
from costudy_pipelines.sandbox.world import World

NAME_PRIORITY = ("ghl", "whop", "sheets", "platform", "elective", "course", "website")
GHL_PHONE_SHARE = 0.8


@dataclass
class UserRow:
    id: UUID
    email: str
    name: str | None = None
    username: str | None = None
    phone: str | None = None
    phone_trust: int = 9


def family_name(seed: int, who: Person, family: str) -> str | None:
    """The name a family's records show (before any rename)."""
    if family == "ghl":
        return " ".join(first_last(seed, who, family, 0))
    if family in ("whop", "sheets"):
        return display_name(seed, who, family, 0) or None
    return who.name


def person_users(world: World, index: int) -> list[UserRow]:
    """The users one person becomes: one per address their families see."""
    seed, who = world.seed, person(world.seed, index)
    profile = world.population.profile(index)
    rows: dict[str, UserRow] = {}
    for family in NAME_PRIORITY:
        if family not in profile.families:
            continue
        email = world.address(index, family)
        number = profile.addresses.get(family, 0)
        row = rows.setdefault(email, UserRow(UUID(int=(index << 2) | number), email))
        if row.name is None:
            row.name = family_name(seed, who, family)
        if family in ("whop", "platform") and row.username is None:
            row.username = who.username
        trust = {"whop": 1, "website": 2, "ghl": 3}.get(family)
        has_phone = (
            family == "whop"
            or (family == "website" and profile.counts.get("demo_requests", 0) > 0)
            or (family == "ghl" and Draw(seed, "feature-phone", index).chance(GHL_PHONE_SHARE))
        )
        if trust is not None and has_phone and trust < row.phone_trust:
            row.phone, row.phone_trust = who.phone, trust
    return list(rows.values())


def world_users(world: World) -> Iterator[tuple[int, UserRow]]:
    """(person index, user) for every user of the world, people in index order."""
    for index in range(world.population.size):
        for row in person_users(world, index):
            yield index, row
