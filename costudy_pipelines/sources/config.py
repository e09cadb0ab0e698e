"""sources.toml: which sources to sync and how; no credentials (those come from the environment).

Read strictly: an unknown key, a value out of range or a malformed entry is an error naming
the file, the entry and the key, never a default silently taken. Each `[sources.<name>]`
entry's own keys (beyond `module` and `available_from`) are checked by the registry against
the settings its source declares.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.lib.validation.types import DEFAULT_AMOUNT_BOUNDS, AmountBounds

CONFIG_VAR = "COSTUDY_SOURCES_CONFIG"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
SYNC_KEYS = frozenset(
    {"partitions_start", "max_delete_share", "name_priority", "max_amount", "max_amount_decimals"}
)
ENTRY_KEYS = frozenset({"module", "available_from", "enabled"})
PEOPLE_KEYS = frozenset({"auto_accept_above", "max_group_size", "threshold", "max_block_size"})


class SourceConfigError(ValueError):
    """sources.toml is wrong; the message names the file, the entry and the key."""


@dataclass(frozen=True)
class SourceEntry:
    """One `[sources.<name>]` entry: the source folder (or `module`), its first day, and the
    source's own settings (validated by the registry against what the source declares)."""

    name: str
    path: Path
    module: str | None = None
    available_from: date | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True


@dataclass(frozen=True)
class PeopleConfig:
    """`[people]`: the review of probable duplicates. auto_accept_above: accept, without an
    operator, candidates scored at or above it; None (the default): every pair is reviewed.
    max_group_size: automatic acceptance never grows a person beyond it, and the people check
    fails on a person larger than it. threshold: the probability from which a pair is a
    candidate. max_block_size: users sharing one blocking key beyond which the key is skipped
    (bounds the pairs compared)."""

    auto_accept_above: float | None = None
    max_group_size: int = 4
    threshold: float = 0.9
    max_block_size: int = 50


@dataclass(frozen=True)
class SourcesConfig:
    path: Path
    partitions_start: date
    max_delete_share: float
    sources: tuple[SourceEntry, ...]
    name_priority: tuple[str, ...] | None = None
    amount_bounds: AmountBounds = DEFAULT_AMOUNT_BOUNDS
    people: PeopleConfig = field(default_factory=PeopleConfig)

    def first_day(self, entry: SourceEntry) -> date:
        return entry.available_from or self.partitions_start


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_VAR) or PROJECT_ROOT / "sources.toml")


def _date(value: object, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise SourceConfigError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def _unknown(table: dict[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise SourceConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")


def _share(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise SourceConfigError(f"{where}: must be a share within 0..1, not {value!r}")
    return float(value)


def _amount_bounds(sync: dict[str, Any], where: str) -> AmountBounds:
    magnitude = sync.get("max_amount", DEFAULT_AMOUNT_BOUNDS.max_magnitude)
    decimals = sync.get("max_amount_decimals", DEFAULT_AMOUNT_BOUNDS.max_decimals)
    if isinstance(magnitude, bool) or not isinstance(magnitude, int | float | Decimal):
        raise SourceConfigError(f"{where} max_amount: must be a number, not {magnitude!r}")
    if not 0 < magnitude <= 10**15:
        raise SourceConfigError(
            f"{where} max_amount: must be within 0 < x <= 1e15, not {magnitude}"
        )
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 12:
        raise SourceConfigError(
            f"{where} max_amount_decimals: must be an integer within 0..12, not {decimals!r}"
        )
    return AmountBounds(max_magnitude=Decimal(str(magnitude)), max_decimals=decimals)


def _entry(name: str, table: object, path: Path) -> SourceEntry:
    where = f"{path}: [sources.{name}]"
    if not NAME.match(name):
        raise SourceConfigError(f"{where}: a source name must be snake_case")
    if not isinstance(table, dict):
        raise SourceConfigError(f"{where}: must be a table")
    module = table.get("module")
    if module is not None and not isinstance(module, str):
        raise SourceConfigError(f"{where} module: must be a module path string")
    first = table.get("available_from")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SourceConfigError(f"{where} enabled: must be true or false, not {enabled!r}")
    settings = {key: value for key, value in table.items() if key not in ENTRY_KEYS}
    return SourceEntry(
        name,
        path,
        module,
        None if first is None else _date(first, f"{where} available_from"),
        settings,
        enabled,
    )


def _people(table: object, path: Path) -> PeopleConfig:
    where = f"{path}: [people]"
    if not isinstance(table, dict):
        raise SourceConfigError(f"{where}: must be a table")
    _unknown(table, PEOPLE_KEYS, where)
    threshold = table.get("auto_accept_above")
    if threshold is not None:
        threshold = _probability(threshold, f"{where} auto_accept_above")
    defaults = PeopleConfig()
    return PeopleConfig(
        auto_accept_above=threshold,
        max_group_size=_count(table.get("max_group_size", defaults.max_group_size),
                              f"{where} max_group_size", least=2),
        threshold=_probability(table.get("threshold", defaults.threshold), f"{where} threshold"),
        max_block_size=_count(table.get("max_block_size", defaults.max_block_size),
                              f"{where} max_block_size", least=2),
    )  # fmt: skip


def _probability(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SourceConfigError(f"{where}: must be a number, not {value!r}")
    if not 0 < value <= 1:
        raise SourceConfigError(f"{where}: must be a probability within (0, 1], not {value!r}")
    return float(value)


def _count(value: object, where: str, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise SourceConfigError(
            f"{where}: must be a whole number of at least {least}, not {value!r}"
        )
    return value


def load_sources_config(path: Path | None = None) -> SourcesConfig:
    path = path or config_path()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SourceConfigError(f"cannot read {path}: {exc}") from None
    _unknown(data, frozenset({"sync", "sources", "people"}), str(path))
    sync = data.get("sync", {})
    _unknown(sync, SYNC_KEYS, f"{path}: [sync]")
    priority = sync.get("name_priority")
    if priority is not None and (
        not isinstance(priority, list) or not all(isinstance(f, str) for f in priority)
    ):
        raise SourceConfigError(f"{path}: [sync] name_priority: must be a list of families")
    sources = data.get("sources", {})
    if not isinstance(sources, dict) or not sources:
        raise SourceConfigError(f"{path}: no [sources.<name>] entries: nothing to sync")
    return SourcesConfig(
        path=path,
        partitions_start=_date(
            sync.get("partitions_start", "2024-01-01"), f"{path}: [sync] partitions_start"
        ),
        max_delete_share=_share(
            sync.get("max_delete_share", 0.10), f"{path}: [sync] max_delete_share"
        ),
        sources=tuple(_entry(name, table, path) for name, table in sources.items()),
        name_priority=tuple(priority) if priority is not None else None,
        amount_bounds=_amount_bounds(sync, f"{path}: [sync]"),
        people=_people(data.get("people", {}), path),
    )
