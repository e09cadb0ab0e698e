"""What the loader needs to know about a source: its table, identity, validator and scope."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from costudy_pipelines.lib.validation import Column, RecordValidator
from costudy_pipelines.lib.validation.shape import FeedShape


class KeyKind(StrEnum):
    EXTERNAL_ID = "external_id"  # the source's own id, unique in the table
    ROW_HASH = "row_hash"  # SHA-256 of scope + canonical row content, for sources without ids


@dataclass(frozen=True)
class LoadSpec:
    """One source record type and where it lands.

    name: the feed's one name: its asset, and what sync_log and sync_rejects call it
    ("whop_payments", "sheet_payments_ledger", ...). table: its warehouse table.
    family: its source, for name priority ("whop"); the registry fills it from the source
    folder's name (`for_source`), so a spec never repeats what its source declares.
    scope: constant columns that identify this source's slice of a shared table (one sheet of
    sheet_rows, one event kind of website_people); stored on every row, and a full sync only
    soft-deletes inside its scope.
    window_column: the typed timestamp column holding the time the source reads by date (the
    creation time its API or query filters on); set for sources synced by day, whose day
    extract is complete for its window and may soft-delete the window's rows it did not see.
    """

    name: str
    table: str
    validator: RecordValidator
    family: str = ""
    key_kind: KeyKind = KeyKind.EXTERNAL_ID
    scope: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    window_column: str | None = None
    # the top-level fields its validator reads and their JSON types: shape drift is reported
    # against it (lib/validation/shape.py); None: the feed's shape is not watched
    shape: FeedShape | None = None

    def __post_init__(self) -> None:
        if self.window_column is not None and self.window_column not in {
            column.name for column in self.columns if column.sql_type == "timestamptz"
        }:
            raise ValueError(
                f"{self.name}: window_column {self.window_column!r} is not a timestamptz column "
                f"of its validator ({[column.name for column in self.columns]})"
            )

    def for_source(self, family: str) -> LoadSpec:
        """This spec as its source's registry entry loads it."""
        return dataclasses.replace(self, family=family)

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.validator.columns

    @property
    def key_column(self) -> str:
        return self.key_kind.value

    @property
    def key_sql_type(self) -> str:
        return "bytea" if self.key_kind is KeyKind.ROW_HASH else "text"


@dataclass(frozen=True)
class LoadOptions:
    """How a session loads: chunk size (bounded memory), name priority, delete guard, samples.

    name_priority: families, first wins: the registry's (`Registry.name_priority`: each
    source's name_rank, or sources.toml's [sync] name_priority). Empty: every spec's own
    family ranks alone (a session of one source, as the tests and benchmarks run).
    """

    chunk_size: int = 10_000  # records; ~10 KB of Python objects each for a nested API record
    # and canonical JSON bytes: a chunk of large records ends sooner, so memory stays flat
    chunk_bytes: int = 4 << 20  # ~2,300 Whop payments, ~5,000 GHL contacts; 10,000 flat ~2.5 MB
    name_priority: tuple[str, ...] = ()
    max_delete_share: float = 0.10
    reject_samples: int = 20

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {self.chunk_size}")
        if self.chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive, got {self.chunk_bytes}")
        if not 0.0 <= self.max_delete_share <= 1.0:
            raise ValueError(f"max_delete_share must be within 0..1, got {self.max_delete_share}")

    def priority(self, family: str) -> tuple[str, ...]:
        return self.name_priority or (family,)

    def rank(self, family: str) -> int:
        """1 for the first family in the priority list. A family that is not listed is an
        error: it would silently lose every name conflict."""
        if not family:
            raise ValueError(
                "the load spec has no family: load it as its source declares it "
                "(LoadSpec.for_source, or the registry's feed)"
            )
        priority = self.priority(family)
        if family not in priority:
            raise ValueError(
                f"family {family!r} has no name-priority rank (priority: {list(priority)}); "
                "declare its source in sources.toml or list it in [sync] name_priority"
            )
        return priority.index(family) + 1


DEFAULT_OPTIONS = LoadOptions()
