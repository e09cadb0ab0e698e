"""The deterministic world of one company: people, their records in every source, and the days
that change them.

    world = World(WorldConfig(seed=7, people=2_000))
    for record in world.records("whop_payments"): ...  # API shape, index (= time) order
    report = world.advance_day()  # what the new day added, changed and deleted, per source
    world.fingerprint()  # SHA-256 over every live record

Records are generated on demand from (seed, source, person, ordinal) plus the day overlays, so
a world of 1,000,000 records streams in constant memory. Within a source, index order is
creation-time order; indices never move, so they serve as database ids and server cursors.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from costudy_pipelines.sandbox.changes import ChangeReport, snapshot_diff
from costudy_pipelines.sandbox.draw import Draw, mix
from costudy_pipelines.sandbox.generators import SOURCE_NAMES, SPEC_BY_NAME, SPECS
from costudy_pipelines.sandbox.generators.base import Kind, Record, Slot
from costudy_pipelines.sandbox.generators.ghl import location_ids
from costudy_pipelines.sandbox.people import alternate_email, person
from costudy_pipelines.sandbox.population import (
    DUPLICABLE,
    FAMILIES,
    FAMILY_SOURCES,
    MS_PER_DAY,
    SOURCE_FAMILY,
    Population,
)
from costudy_pipelines.sandbox.tables import CatalogTable, PersonTable, Table

MoneyFormat = Literal["float", "money", "mixed"]
SOURCE_CODES = {name: zlib.crc32(name.encode()) for name in SOURCE_NAMES}  # stable numbers
# Families whose sources show a name the warehouse ranks (GHL > Whop > Sheet); a rename on
# an advanced day changes the person's last name in one of them.
NAMED_FAMILIES = ("ghl", "whop", "sheets")


def yesterday_utc() -> date:
    """The last whole day (UTC): where the demo's and the sandbox's world end by default."""
    return datetime.now(UTC).date() - timedelta(days=1)


def start_for(days: int, end: date | None = None) -> date:
    """The first day of a world of `days` days ending on `end` (default: yesterday, UTC).
    Worlds that differ only by their start hold the same content, every date shifted."""
    return (end or yesterday_utc()) - timedelta(days=days - 1)


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 1
    people: int = 1_000
    start: date = date(2024, 1, 1)
    days: int = 90
    malformed_rate: float = 0.01
    duplicate_rate: float = 0.03  # share of people with an exact copy of a record
    money_format: MoneyFormat = "money"
    ghl_locations: int = 2
    # per advanced day, as a share of each source's live records (at least one each):
    change_rate: float = 0.01
    delete_rate: float = 0.003
    rename_rate: float = 0.005  # people renamed per named family
    newcomer_rate: float = 0.01  # new people, as a share of the base population
    # share of people with a second (sometimes a third) address, each used in other sources
    # than their first: one person, several users (ground truth: same_person_pairs)
    address_rate: float = 0.15

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"days must be at least 1, not {self.days}")
        if self.money_format not in ("float", "money", "mixed"):
            raise ValueError(
                f"money_format must be float, money or mixed, not {self.money_format!r}"
            )
        if self.ghl_locations < 1:
            raise ValueError("ghl_locations must be at least 1")
        for name in ("malformed_rate", "duplicate_rate", "change_rate", "delete_rate",
                     "rename_rate", "newcomer_rate", "address_rate"):  # fmt: skip
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within 0..1, not {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "start": self.start.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorldConfig:
        return cls(**{**data, "start": date.fromisoformat(data["start"])})

    @classmethod
    def for_records(cls, total: int, **settings: Any) -> WorldConfig:
        """A config whose world holds about `total` records (people sized from a sample)."""
        sample = cls(**{**settings, "people": 2_000})
        population = Population(
            sample.seed, 2_000, 0, MS_PER_DAY, sample.duplicate_rate, sample.address_rate
        )
        per_person = sum(sum(population.profile(p).counts.values()) for p in range(2_000)) / 2_000
        return cls(**{**settings, "people": max(1, round(total / per_person))})


@dataclass(frozen=True, slots=True)
class Entry:
    """One record and what the world knows about it."""

    source: str
    index: int
    key: str  # external id, or the row hash for sources without ids
    record: Record
    reject: Kind | None  # why a correct sync must reject it (None: the record is valid)
    person: int | None
    created_ms: int


@dataclass
class DayPlan:
    changes: dict[str, set[int]] = field(default_factory=dict)
    deletes: dict[str, set[int]] = field(default_factory=dict)
    renames: list[tuple[int, str]] = field(default_factory=list)


class World:
    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        self.seed = self.config.seed
        self.start_ms = (
            int(datetime(*self.config.start.timetuple()[:3], tzinfo=UTC).timestamp()) * 1000
        )
        self.day = 0
        self.epochs: dict[tuple[int, str], int] = {}
        self.population = Population(
            self.seed,
            self.config.people,
            self.start_ms,
            self.config.days * MS_PER_DAY,
            self.config.duplicate_rate,
            self.config.address_rate,
        )
        self.ghl_locations = location_ids(self)
        self.tables: dict[str, Table] = {spec.name: self._table(spec) for spec in SPECS}

    def _table(self, spec) -> Table:
        if spec.catalog:
            return CatalogTable(spec, spec.catalog.base(self))
        return PersonTable(spec, SOURCE_FAMILY[spec.name], self.population)

    # ---- time ----------------------------------------------------------------------------
    def day_start_ms(self, day: int) -> int:
        """Start of advanced day `day` (1 = the first day after the base range)."""
        return self.start_ms + (self.config.days + day - 1) * MS_PER_DAY

    def catalog_added_ms(self, added: int) -> int:
        """Noon of the day the `added`-th (0-based) catalog row was added."""
        return self.day_start_ms(added + 1) + MS_PER_DAY // 2

    @property
    def end_date(self) -> date:
        """The last day that has data."""
        return self.config.start + timedelta(days=self.config.days + self.day - 1)

    def created_at(self, source: str, index: int) -> datetime:
        """When a record was created (from the world, so malformed dates do not matter)."""
        table = self.tables[source]
        person_index, ordinal = table.locate(index)
        return datetime.fromtimestamp(
            self._created_ms(table, index, person_index, ordinal) / 1000, UTC
        )

    # ---- reading -------------------------------------------------------------------------
    @property
    def sources(self) -> tuple[str, ...]:
        return SOURCE_NAMES

    def count(self, source: str) -> int:
        """Size of the source's index space (deleted records included)."""
        return self.tables[source].count

    def live_count(self, source: str) -> int:
        table = self.tables[source]
        return table.count - len(table.overlay.deleted)

    def entry(self, source: str, index: int) -> Entry | None:
        """The record at `index` with what the world knows about it; None once deleted."""
        table = self.tables[source]
        if index in table.overlay.deleted:
            return None
        person_index, ordinal = table.locate(index)
        return self._entry(table, index, person_index, ordinal)

    def record(self, source: str, index: int) -> Record | None:
        found = self.entry(source, index)
        return found.record if found else None

    def entries(self, source: str, start: int = 0) -> Iterator[Entry]:
        """Live records in index (= creation time) order, from index `start`."""
        table = self.tables[source]
        deleted = table.overlay.deleted
        for index, person_index, ordinal in table.walk(start):
            if index not in deleted:
                yield self._entry(table, index, person_index, ordinal)

    def records(self, source: str, start: int = 0) -> Iterator[Record]:
        for found in self.entries(source, start):
            yield found.record

    def deleted(self, source: str) -> frozenset[int]:
        return frozenset(self.tables[source].overlay.deleted)

    def person_table(self, source: str) -> PersonTable:
        """The table of a source whose records belong to people (not a catalog)."""
        table = self.tables[source]
        assert isinstance(table, PersonTable), f"{source} is a catalog source"
        return table

    def address(self, person_index: int, family: str) -> str:
        """The (canonical) email a person's records in `family` carry."""
        who = person(self.seed, person_index)
        number = self.population.profile(person_index).addresses.get(family, 0)
        return alternate_email(self.seed, who, number) if number else who.email

    def index_of(self, source: str, person_index: int, ordinal: int) -> int:
        return self.person_table(source).person_range(person_index)[ordinal]

    def catalog_base(self, source: str) -> int:
        table = self.tables[source]
        assert isinstance(table, CatalogTable)
        return table.base

    def fingerprint(self) -> str:
        """SHA-256 over the config, the day and every live record: same seed, same hash."""
        digest = hashlib.sha256()
        digest.update(canonical({"config": self.config.to_dict(), "day": self.day}).encode())
        for source in self.sources:
            digest.update(f"\n#{source}\n".encode())
            for found in self.entries(source):  # records are built in a fixed key order
                line = json.dumps(found.record, ensure_ascii=False, separators=(",", ":"))
                digest.update(f"{found.key}\t{line}\n".encode())
        return digest.hexdigest()

    # ---- building one record -------------------------------------------------------------
    def content_ordinal(self, source: str, index: int, ordinal: int) -> int:
        """The ordinal whose content a record shows: the one before, for an exact duplicate."""
        copies = self.population.duplicates.get(source)
        return ordinal - 1 if copies and index in copies else ordinal

    def _created_ms(self, table: Table, index: int, person_index: int | None, ordinal: int) -> int:
        if person_index is None:
            catalog = table.spec.catalog
            assert catalog is not None, f"{table.spec.name} has rows without a person"
            return catalog.time_ms(self, index)
        content = self.content_ordinal(table.spec.name, index, ordinal)
        return self.population.record_ms(person_index, content)

    def _entry(self, table: Table, index: int, person_index: int | None, ordinal: int) -> Entry:
        spec = table.spec
        slot = Slot(
            source=spec.name,
            index=index,
            person=person(self.seed, person_index) if person_index is not None else None,
            ordinal=ordinal,
            content_ordinal=self.content_ordinal(spec.name, index, ordinal),
            created_ms=self._created_ms(table, index, person_index, ordinal),
            epoch=self._epoch(spec.name, person_index),
            email=self.address(person_index, SOURCE_FAMILY[spec.name])
            if person_index is not None
            else "",
        )
        record = spec.build(self, slot)
        for number, day in enumerate(table.overlay.changes.get(index, ()), start=1):
            spec.change(self, slot, record, self.day_start_ms(day), number)
        reject = self._malform(slot, record)
        return Entry(
            spec.name, index, spec.key(record), record, reject, person_index, slot.created_ms
        )

    def _epoch(self, source: str, person_index: int | None) -> int:
        if person_index is None or not self.epochs:
            return 0
        return self.epochs.get((person_index, SOURCE_FAMILY[source]), 0)

    def _malform(self, slot: Slot, record: Record) -> Kind | None:
        """About `malformed_rate` of the records get one malformed field; the world remembers
        which and why (duplicates copy it, since they copy the content ordinal)."""
        spec = SPEC_BY_NAME[slot.source]
        if spec.corrupt is None:
            return None
        owner = slot.person.index if slot.person else -1
        dice = mix(self.seed, SOURCE_CODES[slot.source], owner, slot.content_ordinal)
        if (dice & 0xFFFFFFFF) / 2**32 >= self.config.malformed_rate:
            return None
        kinds = spec.corruptions(record)
        if not kinds:
            return None
        kind = kinds[(dice >> 32) % len(kinds)]
        spec.corrupt(record, kind, slot.draw(self.seed, "malformed"))
        return kind

    # ---- advancing -----------------------------------------------------------------------
    def advance_day(self) -> ChangeReport:
        """One more day: newcomers add records everywhere, some records change (statuses,
        tags, amounts, renames), some are deleted. Returns exactly what differs, per source."""
        day = self.day + 1
        plan = self._plan(day)
        touched = self._touched(plan)
        before = {source: self._snapshot(source, indices) for source, indices in touched.items()}
        old_counts = {source: table.count for source, table in self.tables.items()}
        self._apply(day, plan)
        after = {}
        for source, table in self.tables.items():
            indices = set(touched.get(source, ())) | set(range(old_counts[source], table.count))
            after[source] = self._snapshot(source, indices)
        return snapshot_diff(day, self.end_date, before, after)

    def _plan(self, day: int) -> DayPlan:
        plan = DayPlan()
        for source, table in self.tables.items():
            live = self.live_count(source)
            changing = self._pick(day, source, "change", self.config.change_rate, live, set())
            plan.changes[source] = changing
            if table.spec.deletable:
                plan.deletes[source] = self._pick(
                    day, source, "delete", self.config.delete_rate, live, changing
                )
        self._cascade_order_deletes(plan)
        for family in NAMED_FAMILIES:
            members = self.population.members[family]
            draw = Draw(self.seed, "day", day, "rename", family)
            wanted = max(1, round(len(members) * self.config.rename_rate)) if members else 0
            picked = {members[draw.below(len(members))] for _ in range(wanted)}
            plan.renames.extend((person_index, family) for person_index in sorted(picked))
        return plan

    def _pick(
        self, day: int, source: str, what: str, rate: float, live: int, taken: set[int]
    ) -> set[int]:
        """About `rate` of the live records (at least one), never deleted or `taken` ones."""
        table = self.tables[source]
        if live == 0 or rate == 0:
            return set()
        wanted = max(1, round(live * rate))
        draw = Draw(self.seed, "day", day, what, source)
        picked: set[int] = set()
        for _ in range(wanted * 20):
            if len(picked) == wanted:
                break
            index = draw.below(table.count)
            if index not in table.overlay.deleted and index not in taken:
                picked.add(index)
        return picked

    def _cascade_order_deletes(self, plan: DayPlan) -> None:
        """An order's items go with it (ON DELETE CASCADE in the course database)."""
        orders, items = self.person_table("orders"), self.person_table("order_items")
        for index in plan.deletes.get("orders", ()):
            person_index, order = orders.locate(index)
            before = sum(self.population.profile(person_index).items_per_order[:order])
            own = self.population.profile(person_index).items_per_order[order]
            first = items.person_range(person_index).start + before
            gone = set(range(first, first + own)) - items.overlay.deleted
            plan.deletes["order_items"] |= gone
            plan.changes["order_items"] -= gone

    def _touched(self, plan: DayPlan) -> dict[str, set[int]]:
        touched: dict[str, set[int]] = {}
        for source in self.tables:
            touched[source] = plan.changes.get(source, set()) | plan.deletes.get(source, set())
        for person_index, family in plan.renames:
            for source in FAMILY_SOURCES[family]:
                touched[source] |= set(self.person_table(source).person_range(person_index))
        for source in DUPLICABLE:  # an exact copy shares its twin's key: snapshot both
            table = self.person_table(source)
            owners = {table.locate(index)[0] for index in touched[source]}
            for owner in owners:
                touched[source] |= set(table.person_range(owner))
        return touched

    def _apply(self, day: int, plan: DayPlan) -> None:
        for source, indices in plan.changes.items():
            overlay = self.tables[source].overlay
            for index in indices:
                overlay.changes[index] = (*overlay.changes.get(index, ()), day)
        for source, indices in plan.deletes.items():
            self.tables[source].overlay.deleted |= indices
        for person_index, family in plan.renames:
            key = (person_index, family)
            self.epochs[key] = self.epochs.get(key, 0) + 1
        self.day = day
        newcomers = max(len(FAMILIES), round(self.config.people * self.config.newcomer_rate))
        self.population.add_block(newcomers, self.day_start_ms(day), MS_PER_DAY)
        for table in self.tables.values():
            if isinstance(table, CatalogTable):
                table.added += 1

    def _snapshot(self, source: str, indices: Iterable[int]) -> dict[str, Record]:
        found = (self.entry(source, index) for index in sorted(indices))
        return {item.key: item.record for item in found if item is not None}


def canonical(value: object) -> str:
    """The one JSON spelling of a value (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
