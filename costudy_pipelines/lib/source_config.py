"""sources.toml: which sources to sync and how; no credentials (those come from the environment)."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from costudy_pipelines.lib.settings import PROJECT_ROOT

CONFIG_VAR = "COSTUDY_SOURCES_CONFIG"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class SourceConfigError(ValueError):
    """sources.toml is wrong; the message names the file and the entry."""


@dataclass(frozen=True)
class SheetConfig:
    name: str
    spreadsheet_key: str
    worksheet: str
    # SheetColumns keyword arguments as TOML gives them: header names (date_formats a list)
    columns: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourcesConfig:
    partitions_start: date
    max_delete_share: float
    available_from: dict[str, date]
    sheets: tuple[SheetConfig, ...]

    def first_day(self, family: str) -> date:
        return self.available_from.get(family, self.partitions_start)


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_VAR) or PROJECT_ROOT / "sources.toml")


def load_sources_config(path: Path | None = None) -> SourcesConfig:
    path = path or config_path()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SourceConfigError(f"cannot read {path}: {exc}") from None
    sync = data.get("sync", {})
    try:
        config = SourcesConfig(
            partitions_start=_date(sync.get("partitions_start", "2024-01-01")),
            max_delete_share=float(sync.get("max_delete_share", 0.10)),
            available_from={k: _date(v) for k, v in data.get("available_from", {}).items()},
            sheets=tuple(SheetConfig(**entry) for entry in data.get("sheets", [])),
        )
    except (TypeError, ValueError) as exc:
        raise SourceConfigError(f"{path}: {exc}") from None
    names = [sheet.name for sheet in config.sheets]
    bad = [name for name in names if not NAME.match(name)]
    if bad:
        raise SourceConfigError(f"{path}: sheet names must be snake_case: {bad}")
    if len(set(names)) != len(names):
        raise SourceConfigError(f"{path}: two [[sheets]] entries share a name")
    return config


def _date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
