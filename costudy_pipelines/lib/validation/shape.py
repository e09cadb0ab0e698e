"""Source shape drift: what a feed declares it reads, what a partition's raw payloads showed.

A feed declares the top-level fields it reads and their JSON types (`FeedShape`). While a
partition syncs, a `PartitionShape` sees every raw record exactly as the source sent it: each
field's JSON types, how many records lacked it, and an example record id for each. `drift()`
compares one partition with the declaration and with the shape observed before (the fields
earlier sessions saw, `known`), the way dlt's schema contracts do:

- **disappeared**: a declared field missing from a record, or a field every earlier session
  saw missing from every record of the partition;
- **changed type**: a declared field with a type the declaration does not allow, or another
  field with a type never seen before (null never counts: optional fields are null at times);
- **appeared**: a field neither declared nor seen before.

Plain Python (no Dagster): the sync records each partition's shape and drift in sync_log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

JsonType = Literal["string", "number", "boolean", "object", "array", "null"]
JSON_TYPES: frozenset[str] = frozenset({"string", "number", "boolean", "object", "array", "null"})
DriftKind = Literal["appeared", "disappeared", "changed_type"]


def json_type(value: Any) -> str:
    """The JSON type of a decoded value (bool before number: bool is an int in Python)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__  # not JSON: reported as such


@dataclass(frozen=True)
class FeedShape:
    """The top-level fields a feed reads, each with the JSON types it accepts; `ignored`: keys
    the product itself adds to a record (never the source's), left out of the comparison."""

    fields: Mapping[str, frozenset[str]]
    ignored: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name, types in self.fields.items():
            unknown = set(types) - JSON_TYPES
            if unknown or not types:
                raise ValueError(f"field {name!r}: JSON types must be among {sorted(JSON_TYPES)}")

    @classmethod
    def of(cls, ignored: Iterable[str] = (), **fields: str) -> FeedShape:
        """`FeedShape.of(id="string", paid_at="string|null")`."""
        return cls(
            {name: frozenset(spec.split("|")) for name, spec in fields.items()},
            frozenset(ignored),
        )


@dataclass
class PartitionShape:
    """What one partition's raw records showed, field by field."""

    records: int = 0
    types: dict[str, dict[str, int]] = field(default_factory=dict)  # field -> type -> records
    examples: dict[str, dict[str, str]] = field(default_factory=dict)  # field -> type -> id
    present: dict[str, int] = field(default_factory=dict)
    missing_example: dict[str, str] = field(default_factory=dict)  # declared field -> an id
    _declared: tuple[str, ...] = ()

    def observe(self, record: Mapping[str, Any], shape: FeedShape, id_field: str = "id") -> None:
        self.records += 1
        record_id = str(record.get(id_field))
        for name, value in record.items():
            if name in shape.ignored:
                continue
            kind = json_type(value)
            by_type = self.types.setdefault(name, {})
            by_type[kind] = by_type.get(kind, 0) + 1
            self.examples.setdefault(name, {}).setdefault(kind, record_id)
            self.present[name] = self.present.get(name, 0) + 1
        for name in shape.fields:
            if name not in record:
                self.missing_example.setdefault(name, record_id)

    def fields(self) -> dict[str, list[str]]:
        """Each field seen, with its types (sorted): what later partitions compare with."""
        return {name: sorted(types) for name, types in sorted(self.types.items())}


@dataclass(frozen=True)
class Drift:
    """One difference between a partition's records and what was expected of them."""

    field: str
    kind: str  # a DriftKind
    declared: bool  # the feed reads this field
    expected: tuple[str, ...]  # the types declared or seen before (none for `appeared`)
    found: tuple[str, ...]  # the types seen now (none for `disappeared`)
    records: int  # how many of the partition's records show it
    example_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "kind": self.kind,
            "declared": self.declared,
            "expected": list(self.expected),
            "found": list(self.found),
            "records": self.records,
            "example_id": self.example_id,
        }

    def describe(self) -> str:
        where = "read by the feed" if self.declared else "not read by the feed"
        if self.kind == "appeared":
            return f"{self.field} appeared as {'|'.join(self.found)} ({where})"
        if self.kind == "disappeared":
            return f"{self.field} disappeared ({where}; expected {'|'.join(self.expected)})"
        return (
            f"{self.field} changed type: {'|'.join(self.found)} where "
            f"{'|'.join(self.expected)} was expected ({where})"
        )


def drift(
    shape: FeedShape, observed: PartitionShape, known: Mapping[str, Iterable[str]] | None
) -> list[Drift]:
    """How the partition's records differ from the declaration and from `known` (the fields
    and types seen before; None when the feed was never observed: only the declaration)."""
    if observed.records == 0:
        return []  # a quiet day shows nothing, and so nothing went
    found: list[Drift] = []
    seen = {name: set(types) for name, types in (known or {}).items()}
    for name, allowed in sorted(shape.fields.items()):
        expected = tuple(sorted(allowed))
        missing = observed.records - observed.present.get(name, 0)
        if missing:
            example = observed.missing_example[name]
            found.append(Drift(name, "disappeared", True, expected, (), missing, example))
        by_type = observed.types.get(name, {})
        wrong = {kind: n for kind, n in by_type.items() if kind not in allowed}
        if wrong:
            example = observed.examples[name][min(wrong)]
            found.append(
                Drift(name, "changed_type", True, expected, tuple(sorted(wrong)),
                      sum(wrong.values()), example)
            )  # fmt: skip
        elif name in seen:  # within the declaration, but not what the feed has been sending
            found += _retyped(name, True, seen[name], by_type, observed)
    for name, by_type in sorted(observed.types.items()):
        if name in shape.fields or known is None:
            continue
        if name not in seen:
            example = observed.examples[name][min(by_type)]
            found.append(
                Drift(name, "appeared", False, (), tuple(sorted(by_type)),
                      observed.present[name], example)
            )  # fmt: skip
            continue
        found += _retyped(name, False, seen[name], by_type, observed)
    for name in sorted(set(seen) - set(observed.types) - set(shape.fields)):
        found.append(
            Drift(name, "disappeared", False, tuple(sorted(seen[name])), (), observed.records,
                  _any_id(observed))
        )  # fmt: skip
    return found


def _retyped(
    name: str, declared: bool, before: set[str], now: dict[str, int], observed: PartitionShape
) -> list[Drift]:
    """A type never seen before for a field seen before (null on either side never counts)."""
    was = before - {"null"}
    new = {kind: n for kind, n in now.items() if kind != "null" and kind not in was}
    if not new or not was:
        return []
    example = observed.examples[name][min(new)]
    return [
        Drift(name, "changed_type", declared, tuple(sorted(was)), tuple(sorted(new)),
              sum(new.values()), example)
    ]  # fmt: skip


def _any_id(observed: PartitionShape) -> str:
    ids = observed.examples.get("id", {})
    return next(iter(ids.values()), "")


def merged(
    known: Mapping[str, Iterable[str]] | None, observed: PartitionShape
) -> dict[str, set[str]]:
    """The fields and types seen so far, this partition included."""
    fields = {name: set(types) for name, types in (known or {}).items()}
    for name, types in observed.types.items():
        fields.setdefault(name, set()).update(types)
    return fields
