"""What one advanced day did to each source, as keys (external ids or row hashes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

Snapshot = dict[str, dict[str, Any]]  # key -> record


@dataclass(frozen=True)
class SourceChanges:
    added: frozenset[str]
    changed: frozenset[str]
    deleted: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.deleted)

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "added": sorted(self.added),
            "changed": sorted(self.changed),
            "deleted": sorted(self.deleted),
        }


@dataclass(frozen=True)
class ChangeReport:
    day: int  # 1 for the first advanced day
    date: date  # the calendar day that was added
    sources: dict[str, SourceChanges]

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "date": self.date.isoformat(),
            "sources": {name: changes.to_dict() for name, changes in self.sources.items()},
        }


def diff(before: dict[str, Any], after: dict[str, Any]) -> SourceChanges:
    """Keys only after (added), only before (deleted), in both with other content (changed).
    For row-hashed sources an edited row is a deleted hash plus an added one."""
    common = before.keys() & after.keys()
    return SourceChanges(
        added=frozenset(after.keys() - before.keys()),
        changed=frozenset(key for key in common if before[key] != after[key]),
        deleted=frozenset(before.keys() - after.keys()),
    )


def snapshot_diff(
    day: int, on: date, before: dict[str, Snapshot], after: dict[str, Snapshot]
) -> ChangeReport:
    sources = {source: diff(before.get(source, {}), after[source]) for source in after}
    return ChangeReport(day, on, sources)
