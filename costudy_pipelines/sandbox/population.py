"""Who is where: each person's source families, how many records they have in each source, and
when they joined. Everything is a pure function of (seed, person index) except the day blocks
`advance_day` appends; the per-family member lists are compact integer arrays, never records.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from costudy_pipelines.sandbox.draw import Draw, Weighted, mix

FAMILIES = ("ghl", "whop", "sheets", "elective", "website", "course", "platform")
# The family a person is first seen in; about half of the people also appear in 1-2 others.
HOME_WEIGHTS = Weighted(
    (
        ("ghl", 0.2),
        ("whop", 0.2),
        ("sheets", 0.12),
        ("elective", 0.08),
        ("website", 0.2),
        ("course", 0.12),
        ("platform", 0.08),
    )
)
MULTI_SOURCE_SHARE = 0.5

FAMILY_SOURCES: dict[str, tuple[str, ...]] = {
    "ghl": ("ghl_contacts",),
    "whop": ("whop_users", "whop_memberships", "whop_payments"),
    "sheets": ("sheet_rows",),
    "elective": ("elective_rows",),
    "website": (
        "votes",
        "demo_requests",
        "email_subscriptions",
        "contact_submissions",
        "analytics_events",
    ),
    "course": ("enrollments", "orders", "order_items"),
    "platform": ("platform_users",),
}
SOURCE_FAMILY = {source: family for family, sources in FAMILY_SOURCES.items() for source in sources}
# Sources where a person sometimes has an exact copy of their last record (double submission,
# a row pasted twice): the copy is one more ordinal whose content repeats the one before.
DUPLICABLE = frozenset(
    {"sheet_rows", "elective_rows", "votes", "demo_requests", "contact_submissions"}
)
MAX_RECORDS_PER_SOURCE = 15  # record times are spaced 1/32 of a person step apart

MS_PER_DAY = 86_400_000
# Families whose records always carry the person's first address: the platform keeps one
# canonical, unique email per account (the reverse sync finds its users by it).
FIRST_ADDRESS_ONLY = frozenset({"platform"})
THIRD_ADDRESS_SHARE = 0.3  # of the people with another address, those with two more


@dataclass(frozen=True, slots=True)
class Profile:
    """One person's presence: their families and record count per source."""

    families: frozenset[str]
    counts: dict[str, int]
    items_per_order: tuple[int, ...]
    duplicated: frozenset[str]  # sources whose last record repeats the one before it
    # family -> which of the person's addresses its records carry (absent: 0, the first one)
    addresses: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Block:
    """People who joined together: the base population, or the newcomers of one day."""

    first: int
    count: int
    start_ms: int
    step_ms: float


def _website_counts(draw: Draw, fresh: bool) -> dict[str, int]:
    counts = {
        "votes": draw.below(3),
        "demo_requests": int(draw.chance(0.3)),
        "email_subscriptions": int(draw.chance(0.6)),
        "contact_submissions": int(draw.chance(0.25)),
        "analytics_events": draw.below(4),
    }
    if fresh or not any(counts.values()):
        counts = {source: max(1, count) for source, count in counts.items()}
    return counts


def _course_counts(draw: Draw) -> tuple[dict[str, int], tuple[int, ...]]:
    orders = 1 + int(draw.chance(0.3))
    items = tuple(1 + int(draw.chance(0.3)) for _ in range(orders))
    counts = {"enrollments": 1 + int(draw.chance(0.4)), "orders": orders, "order_items": sum(items)}
    return counts, items


def _whop_counts(draw: Draw) -> dict[str, int]:
    memberships = 1 + int(draw.chance(0.25))
    return {
        "whop_users": 1,
        "whop_memberships": memberships,
        "whop_payments": memberships * draw.between(1, 3),
    }


class Population:
    """The people: base population plus the newcomers of every advanced day."""

    def __init__(
        self,
        seed: int,
        people: int,
        start_ms: int,
        span_ms: int,
        duplicate_rate: float,
        address_rate: float = 0.0,
    ):
        if people < 1:
            raise ValueError(f"a world needs at least one person, not {people}")
        self.seed = seed
        self.duplicate_rate = duplicate_rate
        self.address_rate = address_rate
        self.base_count = people
        self.blocks: list[Block] = [Block(0, people, start_ms, span_ms / people)]
        self._block_firsts = [0]
        self.members: dict[str, array] = {family: array("q") for family in FAMILIES}
        # per source: where each member's records start (member position -> first index),
        # and the indices of records that are exact copies of the record before them
        self.offsets: dict[str, array] = {source: array("q", [0]) for source in SOURCE_FAMILY}
        self.duplicates: dict[str, set[int]] = {source: set() for source in DUPLICABLE}
        self.profile = lru_cache(maxsize=16384)(self._profile)
        self._enrol(range(people))

    @property
    def size(self) -> int:
        last = self.blocks[-1]
        return last.first + last.count

    def add_block(self, count: int, start_ms: int, span_ms: int) -> range:
        """Newcomers joining within [start_ms, start_ms + span_ms); returns their indices."""
        block = Block(self.size, count, start_ms, span_ms / count)
        self.blocks.append(block)
        self._block_firsts.append(block.first)
        newcomers = range(block.first, block.first + count)
        self._enrol(newcomers)
        return newcomers

    def block_of(self, index: int) -> Block:
        return self.blocks[bisect_right(self._block_firsts, index) - 1]

    def record_ms(self, index: int, ordinal: int) -> int:
        """The time of a person's `ordinal`-th record in a source. People join in index order
        (a step apart, jittered within the first half of the step) and their records follow
        1/32 step apart, never overtaking the next person: every source is sorted by time in
        index order."""
        block = self.block_of(index)
        jitter = (mix(self.seed, index) & 0xFFFFFFFF) / 2**32 * 0.45
        joined = block.start_ms + int((index - block.first + jitter) * block.step_ms)
        return joined + int((ordinal + 1) * block.step_ms / 32)

    def _enrol(self, indices: Iterable[int]) -> None:
        """Append people to their families and their records to every source's index space."""
        for index in indices:
            profile = self.profile(index)
            for family in FAMILIES:
                if family not in profile.families:
                    continue
                self.members[family].append(index)
                for source in FAMILY_SOURCES[family]:
                    offsets = self.offsets[source]
                    offsets.append(offsets[-1] + profile.counts.get(source, 0))
                    if source in profile.duplicated:
                        self.duplicates[source].add(offsets[-1] - 1)

    def _profile(self, index: int) -> Profile:
        draw = Draw(self.seed, "profile", index)
        block = self.block_of(index)
        fresh = block.first > 0
        if fresh:  # every family gets newcomers every day, so every source sees additions
            home = FAMILIES[(index - block.first) % len(FAMILIES)]
        else:
            home = draw.weighted(HOME_WEIGHTS)
        families = {home}
        if draw.chance(MULTI_SOURCE_SHARE):
            others = [family for family in FAMILIES if family != home]
            for _ in range(1 + draw.below(2)):
                families.add(others[draw.below(len(others))])
        counts: dict[str, int] = {}
        items: tuple[int, ...] = ()
        for family in FAMILIES:
            if family not in families:
                continue
            if family == "whop":
                counts.update(_whop_counts(draw))
            elif family == "website":
                counts.update(_website_counts(draw, fresh))
            elif family == "course":
                course, items = _course_counts(draw)
                counts.update(course)
            elif family in ("sheets", "elective"):
                counts[FAMILY_SOURCES[family][0]] = 1 + int(draw.chance(0.3))
            elif family == "ghl":
                counts["ghl_contacts"] = 1 + int(draw.chance(0.06))
            else:
                counts["platform_users"] = 1
        duplicated = set()
        for source in sorted(DUPLICABLE & counts.keys()):
            if counts[source] and draw.chance(self.duplicate_rate):
                counts[source] += 1
                duplicated.add(source)
        addresses = self._addresses(index, home, families)
        return Profile(frozenset(families), counts, items, frozenset(duplicated), addresses)

    def _addresses(self, index: int, home: str, families: set[str]) -> dict[str, int]:
        """Which address each family sees: for about `address_rate` of all people (drawn
        among those in two or more families), the home family keeps the first address and
        the others see a second one, or alternately a second and a third."""
        others = sorted(families - {home} - FIRST_ADDRESS_ONLY)
        draw = Draw(self.seed, "addresses", index)
        wanted = min(1.0, self.address_rate / MULTI_SOURCE_SHARE)
        if not others or not draw.chance(wanted):
            return {}
        extra = 2 if len(others) >= 2 and draw.chance(THIRD_ADDRESS_SHARE) else 1
        return {family: 1 + number % extra for number, family in enumerate(others)}
