"""The index space of one source: which (person, ordinal) or catalog row each index is, plus
what `advance_day` did to it. Indices are stable for the life of a world (added records get
new ones at the end), so they double as database ids and server cursors."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field

from costudy_pipelines.sandbox.generators.base import RecordGenerator
from costudy_pipelines.sandbox.population import Population


@dataclass
class Overlay:
    """What the days changed: the day numbers each index was changed on, and the deleted ones."""

    changes: dict[int, tuple[int, ...]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)


class PersonTable:
    """A source whose records belong to people: each member owns a contiguous index range."""

    def __init__(self, spec: RecordGenerator, family: str, population: Population) -> None:
        self.spec = spec
        self.members = population.members[family]  # both grow as newcomers enrol
        self.offsets = population.offsets[spec.name]
        self.overlay = Overlay()

    @property
    def count(self) -> int:
        return self.offsets[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """(person index, ordinal) of a record index."""
        if not 0 <= index < self.count:
            raise IndexError(f"{self.spec.name} has no record {index}")
        position = bisect_right(self.offsets, index) - 1
        return self.members[position], index - self.offsets[position]

    def person_range(self, person: int) -> range:
        position = bisect_left(self.members, person)
        if position == len(self.members) or self.members[position] != person:
            return range(0)
        return range(self.offsets[position], self.offsets[position + 1])

    def walk(self, start: int = 0) -> Iterator[tuple[int, int, int]]:
        """(index, person, ordinal) in index order from `start`, without a lookup per record."""
        if start >= self.count:
            return
        position = bisect_right(self.offsets, start) - 1
        index = start
        while position < len(self.members):
            person, end = self.members[position], self.offsets[position + 1]
            while index < end:
                yield index, person, index - self.offsets[position]
                index += 1
            position += 1


class CatalogTable:
    """A source of rows nobody owns (courses, coupons, releases); each day adds one."""

    def __init__(self, spec: RecordGenerator, base: int) -> None:
        self.spec = spec
        self.base = base
        self.added = 0
        self.overlay = Overlay()

    @property
    def count(self) -> int:
        return self.base + self.added

    def locate(self, index: int) -> tuple[None, int]:
        if not 0 <= index < self.count:
            raise IndexError(f"{self.spec.name} has no record {index}")
        return None, index

    def walk(self, start: int = 0) -> Iterator[tuple[int, None, int]]:
        for index in range(start, self.count):
            yield index, None, index


Table = PersonTable | CatalogTable
