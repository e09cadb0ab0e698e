"""What every source module provides: a `RecordGenerator` (how to build, change, corrupt and read
one record) and the small helpers they share (ids, timestamps, money, malformed values)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from costudy_pipelines.sandbox.draw import Draw, Weighted, token
from costudy_pipelines.sandbox.people import Person

if TYPE_CHECKING:
    from costudy_pipelines.sandbox.world import World

EPOCH = date(1970, 1, 1)
Record = dict[str, Any]
Kind = Literal["missing_email", "invalid_email", "bad_amount", "bad_date"]
EMAIL_KINDS: tuple[Kind, ...] = ("missing_email", "invalid_email")
ALL_KINDS: tuple[Kind, ...] = ("missing_email", "invalid_email", "bad_amount", "bad_date")

# Clearly invalid to any email validator (no @, two @, nothing before @, a space).
INVALID_EMAILS = (
    "jane.doe.example.com",
    "jane@@example.com",
    "@example.com",
    "jane doe@example.com",
)
BAD_AMOUNTS = ("N/A", "12.34.56", "TBD", "€ abc")
BAD_DATES = ("2024-02-30", "next Tuesday", "2024-13-45", "31/31/2024")
CURRENCIES = Weighted((("USD", 0.85), ("EUR", 0.1), ("GBP", 0.05)))
USD_PER_UNIT = {"USD": Decimal("1"), "EUR": Decimal("1.08"), "GBP": Decimal("1.27")}
CENT = Decimal("0.01")


@dataclass(slots=True)
class Slot:
    """Where one record sits: its source, index, owner and the state `advance_day` gave it."""

    source: str
    index: int
    person: Person | None  # None for catalog rows (courses, coupons, releases)
    ordinal: int  # the person's n-th record in this source
    content_ordinal: int  # == ordinal, except for an exact duplicate (the ordinal it copies)
    created_ms: int
    epoch: int = 0  # renames of the person's name in this source's family
    email: str = ""  # the owner's address this source's family sees (canonical spelling)

    @property
    def owner(self) -> Person:
        """The person a person-source record belongs to (a catalog row has none)."""
        if self.person is None:
            raise ValueError(f"{self.source} record {self.index} is a catalog row, not a person's")
        return self.person

    def draw(self, seed: int, *extra: object) -> Draw:
        owner = self.person.index if self.person else "catalog"
        return Draw(seed, self.source, owner, self.content_ordinal, *extra)


@dataclass(frozen=True, slots=True)
class Money:
    """A record's contribution to revenue (ground truth for the financial view)."""

    currency: str  # ISO 4217, upper-case
    status: str  # the source's own status word
    amount: Decimal
    refunded: Decimal = Decimal(0)


def _no_kinds(record: Record) -> tuple[Kind, ...]:
    return ()


def _no_change(world: World, slot: Slot, record: Record, day_ms: int, change: int) -> None:
    raise NotImplementedError


@dataclass(frozen=True)
class RecordGenerator:
    name: str
    build: Callable[[World, Slot], Record]
    key: Callable[[Record], str]
    # Apply one day's change in place; must leave the record different from before.
    change: Callable[[World, Slot, Record, int, int], None] = _no_change
    corruptions: Callable[[Record], tuple[Kind, ...]] = _no_kinds
    corrupt: Callable[[Record, Kind, Draw], None] | None = None
    # The email exactly as the record shows it; NO_EMAIL_FIELD when the record has no email
    # field at all (an Elective export without an email column).
    email: Callable[[Record], object] | None = None
    # For records that name their owner but carry no address (Whop memberships): the address
    # the source resolves for the owner elsewhere (Whop's members endpoint), canonical.
    owner_email: Callable[[World, int], str] | None = None
    name_of: Callable[[Record], str | None] | None = None
    money: Callable[[Record], Money | None] | None = None
    catalog: Catalog | None = None
    deletable: bool = True
    row_hashed: bool = False  # no external id: identified by the hash of its content
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    """A source not tied to people (courses, coupons, releases): `base(config)` rows exist at the
    start, `time_ms(world, index)` places them, and every advanced day adds one."""

    base: Callable[[World], int]
    time_ms: Callable[[World, int], int]


NO_EMAIL_FIELD = object()


@lru_cache(maxsize=65536)
def token_id(prefix: str, seed: int, *parts: object) -> str:
    """A Whop-style id (`pay_` + 14 letters and digits), stable for its parts."""
    return f"{prefix}_{token(14, seed, prefix, *parts)}"


@lru_cache(maxsize=4096)
def _day(day_number: int) -> str:
    return (EPOCH + timedelta(days=day_number)).isoformat()


def _clock(ms: int) -> tuple[str, int, int, int, int]:
    """(YYYY-MM-DD, hour, minute, second, millisecond) of a UTC epoch-milliseconds time; by
    arithmetic, since formatting millions of timestamps through datetime is slow."""
    day_number, rest = divmod(ms, 86_400_000)
    hour, rest = divmod(rest, 3_600_000)
    minute, rest = divmod(rest, 60_000)
    second, milli = divmod(rest, 1000)
    return _day(day_number), hour, minute, second, milli


def iso_ms(ms: int) -> str:
    """ISO-8601 with milliseconds and Z, as Whop v1 and GoHighLevel write timestamps."""
    day, hour, minute, second, milli = _clock(ms)
    return f"{day}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"


def iso_db(ms: int) -> str:
    """A timestamptz literal for database rows (COPY parses it)."""
    day, hour, minute, second, milli = _clock(ms)
    return f"{day} {hour:02d}:{minute:02d}:{second:02d}.{milli:03d}+00"


def plain_datetime(ms: int) -> str:
    """`2024-03-05 14:22:10` (sheets and exports written by people or dashboards)."""
    day, hour, minute, second, _ = _clock(ms)
    return f"{day} {hour:02d}:{minute:02d}:{second:02d}"


def plain_date(ms: int) -> str:
    return _clock(ms)[0]


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def in_currency(usd_price: Decimal, currency: str) -> Decimal:
    return cents(usd_price / USD_PER_UNIT[currency])


@lru_cache(maxsize=16384)
def person_currency(seed: int, person: Person) -> str:
    return Draw(seed, "currency", person.index).weighted(CURRENCIES)


def in_day(day_ms: int, draw: Draw) -> int:
    """A moment during the day that starts at `day_ms`."""
    return day_ms + draw.below(86_400_000)


def row_hash(values: dict[str, str]) -> str:
    """SHA-256 of a row's content (column -> cell, every column of the layout, "" when empty):
    the identity of rows from sources without ids (sheets, Elective exports)."""
    canonical = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def corrupt_value(kind: Kind, draw: Draw) -> str | None:
    """A malformed value of the given kind (None for a missing email)."""
    if kind == "missing_email":
        return draw.choice((None, "", "   "))
    if kind == "invalid_email":
        return draw.choice(INVALID_EMAILS)
    if kind == "bad_amount":
        return draw.choice(BAD_AMOUNTS)
    return draw.choice(BAD_DATES)


def by_id(record: Record) -> str:
    return str(record["id"])


def email_row_spec(
    name: str,
    build: Callable[[World, Slot], Record],
    change: Callable[[World, Slot, Record, int, int], None],
    *,
    column: str = "email",
    money: Callable[[Record], Money | None] | None = None,
) -> RecordGenerator:
    """A database table keyed by id whose rows carry a person's email in `column` (the only
    field that can be malformed: the database types the rest)."""

    def corrupt(record: Record, kind: Kind, draw: Draw) -> None:
        record[column] = corrupt_value(kind, draw)

    return RecordGenerator(
        name=name,
        build=build,
        key=by_id,
        change=change,
        corruptions=lambda record: EMAIL_KINDS,
        corrupt=corrupt,
        email=lambda record: record[column],
        money=money,
    )
