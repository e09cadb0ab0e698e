"""What a correct sync of the world must end up with, computed from the world's own knowledge
(which records it malformed and why), never by re-validating records.

    truth = ground_truth(world)
    truth.users()                     # distinct normalised emails the warehouse must hold
    truth.keys["whop_payments"]       # external ids (row hashes) that must be stored
    truth.rejects["sheet_rows"]       # key -> reason ("missing_email", "invalid_email", ...)
    truth.names["zoe.obrien.1a@example.com"]  # NameChoice(name, family) by GHL > Whop > Sheet
    truth.revenue[("whop_payments", "USD", "paid")]  # Totals(amount, refunded, count)
    truth.same_person_pairs()         # {("a@x", "b@y"), ...}: two users, one person

Rules, stated so the sync tests and the sync agree on them:
- A record is rejected iff the world malformed it; rejected records count nowhere else.
- Elective rows from an export without an email column are valid but cannot be tied to a
  person: they are listed under `unattributed`, not under `keys`, and add no revenue.
- Row-hashed sources (sheets, Elective) are keyed by `row_hash(values)` unless a `row_key`
  is given; exact duplicates therefore collapse to one key (and count once in revenue).
- Names: for each email, the first family in `priority` that has a valid record with a
  non-empty name wins; within a family the latest record (creation time, then index) wins.
- People: a person's users are the normalised emails of their valid, attributed records (and
  of their platform account); two of them are a same-person pair (three users, three pairs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import combinations

from costudy_pipelines.sandbox.generators import PEOPLE_SOURCES, SPEC_BY_NAME
from costudy_pipelines.sandbox.generators.base import NO_EMAIL_FIELD, Kind, Record
from costudy_pipelines.sandbox.people import normalise_email
from costudy_pipelines.sandbox.population import SOURCE_FAMILY
from costudy_pipelines.sandbox.world import Entry, World

DEFAULT_PRIORITY = ("ghl", "whop", "sheets")


@dataclass(frozen=True)
class NameChoice:
    name: str
    family: str  # "ghl", "whop" or "sheets": the source family that won


@dataclass
class Totals:
    amount: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    count: int = 0


@dataclass
class GroundTruth:
    keys: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    rejects: dict[str, dict[str, Kind]] = field(default_factory=lambda: defaultdict(dict))
    unattributed: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    emails: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    names: dict[str, NameChoice] = field(default_factory=dict)
    revenue: dict[tuple[str, str, str], Totals] = field(default_factory=lambda: defaultdict(Totals))
    records: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    people: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))

    def users(self, sources: Iterable[str] = PEOPLE_SOURCES) -> set[str]:
        """Distinct normalised emails over the given sources (default: all that carry email)."""
        found: set[str] = set()
        for source in sources:
            found |= self.emails[source]
        return found

    def same_person_pairs(self, users: Iterable[str] | None = None) -> set[tuple[str, str]]:
        """Pairs (a, b), a < b, of normalised emails that belong to one person; only among
        `users` when given (the users a partial sync created)."""
        allowed = set(users) if users is not None else None
        pairs: set[tuple[str, str]] = set()
        for emails in self.people.values():
            mine = sorted(emails if allowed is None else emails & allowed)
            pairs.update(combinations(mine, 2))
        return pairs

    def person_of(self) -> dict[str, int]:
        """Normalised email -> the person it belongs to."""
        return {email: index for index, emails in self.people.items() for email in emails}

    def reject_count(self) -> int:
        return sum(len(rejects) for rejects in self.rejects.values())


def ground_truth(
    world: World,
    *,
    priority: tuple[str, ...] = DEFAULT_PRIORITY,
    row_key: Callable[[Record], str] | None = None,
) -> GroundTruth:
    """One streaming pass over every live record of the world."""
    truth = GroundTruth()
    latest: dict[tuple[str, str], tuple[int, int, str]] = {}
    for source in world.sources:
        spec = SPEC_BY_NAME[source]
        for entry in world.entries(source):
            key = row_key(entry.record) if row_key and spec.row_hashed else entry.key
            truth.records[source] += 1
            if key not in truth.keys[source]:  # an exact duplicate is stored (and counted) once
                _account(world, truth, latest, entry, key)
    for email in sorted({email for email, _ in latest}):
        for family in priority:
            if (email, family) in latest:
                truth.names[email] = NameChoice(latest[email, family][2], family)
                break
    return truth


def _account(
    world: World,
    truth: GroundTruth,
    latest: dict[tuple[str, str], tuple[int, int, str]],
    entry: Entry,
    key: str,
) -> None:
    spec = SPEC_BY_NAME[entry.source]
    if entry.reject:
        truth.rejects[entry.source][key] = entry.reject
        return
    if (
        spec.email is None
        and spec.owner_email is None
        and entry.person is not None
        and "email" in entry.record
    ):
        # a sync target keyed by email (platform users): a user of the warehouse all the same
        truth.people[entry.person].add(normalise_email(entry.record["email"]))
    raw = spec.email(entry.record) if spec.email else NO_EMAIL_FIELD
    if spec.owner_email is not None and entry.person is not None:
        raw = spec.owner_email(world, entry.person)
    if raw is NO_EMAIL_FIELD and spec.email:
        truth.unattributed[entry.source].add(key)
        return  # no person, so no user, name or per-user revenue
    truth.keys[entry.source].add(key)
    if isinstance(raw, str):
        email = normalise_email(raw)
        truth.emails[entry.source].add(email)
        if entry.person is not None:
            truth.people[entry.person].add(email)
        name = spec.name_of(entry.record) if spec.name_of else None
        family = SOURCE_FAMILY.get(entry.source)
        if name and family:
            rank = (entry.created_ms, entry.index, name)
            if rank > latest.get((email, family), (-1, -1, "")):
                latest[email, family] = rank
    money = spec.money(entry.record) if spec.money else None
    if money:
        totals = truth.revenue[entry.source, money.currency, money.status]
        totals.amount += money.amount
        totals.refunded += money.refunded
        totals.count += 1
