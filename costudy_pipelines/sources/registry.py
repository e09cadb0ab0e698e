"""The registry of sources: what each source folder declares, checked once, in one place.

Every source is a folder under costudy_pipelines/sources/ (or a module a `[sources.<name>]`
entry of sources.toml points at) holding:

    spec.py     SOURCE = Source(...): its feeds (assets → warehouse tables), name-priority
                rank, schedule, freshness, how its counts are checked, owners; an API source
                also its connection settings' environment variables (Api)
    records.py  validation of its records          client.py  how its records are read
    defs.py     its Dagster assets, checks and resource (the only file importing Dagster);
                API and database sources have none: defs/_api_sources.py and
                defs/_database_sources.py build them from their Api or Database
    sandbox.py  EMULATOR = Emulator(...): how the sandbox stands in for it

The folder's name is the source's one name: its sources.toml entry, its name-priority family,
the `costudy/source` tag of its assets. Each feed has one name too (LoadSpec.name): its asset,
and its sessions' in sync_log and sync_rejects.

Definitions, freshness policies, sync health, count checks, name priority, the demo summary
and the benchmarks all read the registry, built once by `load_registry()` and passed in;
nothing keeps a list of sources by hand. A folder or entry that is incomplete fails here,
with a message naming the source and the piece. Plain Python: nothing here imports Dagster.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from costudy_pipelines.lib.clients.base import Page, TimeWindow
from costudy_pipelines.lib.count_comparison import SourceTable
from costudy_pipelines.lib.loading.spec import DEFAULT_OPTIONS, LoadOptions, LoadSpec
from costudy_pipelines.lib.people.features import IdentitySource
from costudy_pipelines.lib.validation.records import SchemaValidator
from costudy_pipelines.lib.validation.types import AmountBounds
from costudy_pipelines.sources.config import (
    SourceConfigError,
    SourceEntry,
    SourcesConfig,
    load_sources_config,
)

if TYPE_CHECKING:
    from costudy_pipelines.lib.clients.databases import Extract as DatabaseExtract
    from costudy_pipelines.sandbox.emulator import Emulator

SOURCES_PACKAGE = "costudy_pipelines.sources"
# and defs.py, unless spec.py declares an api or a database
PIECES = ("spec", "records", "client", "sandbox")


class Schedule(StrEnum):
    DAILY = "daily"  # daily partitions: one session per UTC day of the records' creation time
    FULL = "full"  # each materialization reads the source whole; rows gone are soft-deleted


@dataclass(frozen=True)
class Freshness:
    """Hours after the last materialization at which the asset warns, then fails."""

    warn_hours: float
    fail_hours: float


DAILY_FRESHNESS = Freshness(warn_hours=26, fail_hours=30)  # one run late; the day's run missing


@dataclass(frozen=True)
class ReportedCount:
    """The source's API reports how many records a day holds; the asset records it in its
    materialization metadata and `counts_match_source` compares it with what was stored."""


@dataclass(frozen=True)
class DatabaseCount:
    """The source is a database: `counts_match_source` counts `table` per day through the
    resource `database` (e.g. "website_db") and samples ids missing on either side."""

    database: str
    table: SourceTable


@dataclass(frozen=True)
class NoCount:
    """Nothing independent to count against; `reason` says why (shown on the check)."""

    reason: str


CountSource = ReportedCount | DatabaseCount | NoCount


class DayReader(Protocol):
    """One feed's reader for one run of an API source (what its client.py's open_feed
    returns)."""

    def day(self, window: TimeWindow) -> Iterable[Page]:
        """The pages of the records created in `window`."""
        ...

    def reported(self, window: TimeWindow) -> int | str | None:
        """Once the window is read: the count the API reported for it, why there is none (a
        str), or None (the API reports no counts)."""
        ...

    def run_figures(self) -> Mapping[str, Any]:
        """The run's own figures (requests, waits), for its log: not a day's."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Api:
    """How an API source is read; one generic builder (defs/_api_sources.py) turns it into its
    assets and resource, so the folder needs no defs.py.

    environment: each connection setting -> the environment variable it is read from (secrets
    stay there); kinds: the UI's badges; pool: the Dagster pool its steps share (parallel
    partitions share the API's rate limit). The folder's client.py defines
    `open_feed(settings, feed) -> DayReader`: that feed's reader for one run, imported only
    by a run (a client's HTTP stack is no part of loading the definitions)."""

    environment: Mapping[str, str]
    kinds: frozenset[str]
    pool: str


@dataclass(frozen=True)
class Feed:
    """One asset of a source: how its records land (load.name is the feed's one name: its
    asset, and its sessions' in sync_log), and what its counts compare to."""

    load: LoadSpec
    counts: CountSource
    description: str
    # The identity features its rows carry (people matching, lib/people/features.py):
    # feature -> path of keys into the row's raw JSON, e.g. {"phone": ("customer_phone",)}
    identity: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def asset(self) -> str:
        return self.load.name


@dataclass(frozen=True)
class Database:
    """A source read from an application database; one generic builder
    (defs/_database_sources.py) turns it into its assets, so the folder needs no defs.py.

    name: the database ("website": its resource `website_db`, its variable WEBSITE_DB_URL);
    extracts: each feed's asset -> what it reads (lib/clients/databases.py's Extract)."""

    name: str
    extracts: Mapping[str, DatabaseExtract]


@dataclass(frozen=True)
class Source:
    """What a source folder declares in spec.py (SOURCE)."""

    name: str  # the folder, the key of its [sources.<name>] entry, its name-priority family
    title: str
    # 1 wins conflicting names (SPEC §3.2: GoHighLevel, then Whop, then Sheets); None: after
    # every ranked source, unranked ones in name order (a new source's names never win)
    name_rank: int | None
    schedule: Schedule
    freshness: Freshness
    owners: tuple[str, ...]
    feeds: Callable[[Any], tuple[Feed, ...]]  # settings (see `settings`) → the feeds
    settings: type | None = None  # a dataclass read strictly from the source's config entry
    api: Api | None = None  # an API source: its assets come from the generic builder
    database: Database | None = None  # an application database's tables: the same


@dataclass(frozen=True)
class RegisteredSource:
    """A source as loaded: its declaration, config entry, settings and feeds, and what the
    whole configuration decides for its sessions (name priority, delete guard, first day)."""

    source: Source
    entry: SourceEntry
    module: str
    settings: Any
    feeds: tuple[Feed, ...]
    config: SourcesConfig
    load_options: LoadOptions = DEFAULT_OPTIONS

    def open_reader(self, settings: Mapping[str, str], feed: str) -> DayReader:
        """An API source's reader of `feed` for one run: its client.py's open_feed (imported
        by a run only: a client's HTTP stack is no part of loading the definitions)."""
        client = importlib.import_module(f"{self.module}.client")
        open_feed = getattr(client, "open_feed", None)
        if open_feed is None:
            raise RegistryError(
                f"source {self.name!r}: {self.module}.client defines no "
                "open_feed(settings, feed), which its spec.py's api needs"
            )
        return open_feed(settings, feed)

    def first_day(self) -> date:
        return self.config.first_day(self.entry)

    def with_settings(self, settings: Any) -> RegisteredSource:
        """The source as other settings (another worksheet, other headers) would load it."""
        feeds = _feeds(self.source, settings, self.config.amount_bounds)
        return dataclasses.replace(self, settings=settings, feeds=feeds)

    @property
    def name(self) -> str:
        return self.source.name

    def emulator(self) -> Emulator:
        """Its sandbox stand-in (imports sandbox.py: only the sandbox needs it)."""
        emulator = getattr(importlib.import_module(f"{self.module}.sandbox"), "EMULATOR", None)
        if emulator is None:
            raise RegistryError(f"source {self.name!r}: {self.module}.sandbox defines no EMULATOR")
        return emulator


class RegistryError(SourceConfigError):
    """A source is declared incompletely or inconsistently; the message names it."""


@dataclass(frozen=True)
class Registry:
    config: SourcesConfig
    sources: tuple[RegisteredSource, ...]

    def __iter__(self) -> Iterator[RegisteredSource]:
        return iter(self.sources)

    def feeds(self) -> Iterator[tuple[RegisteredSource, Feed]]:
        for registered in self.sources:
            for feed in registered.feeds:
                yield registered, feed

    def feed(self, asset: str) -> Feed:
        for _, feed in self.feeds():
            if feed.asset == asset:
                return feed
        raise KeyError(asset)

    def source(self, name: str) -> RegisteredSource:
        for registered in self.sources:
            if registered.name == name:
                return registered
        raise KeyError(f"no source {name!r}; registered: {[s.name for s in self.sources]}")

    def name_priority(self) -> tuple[str, ...]:
        """Families by name-priority rank; sources.toml's [sync] name_priority overrides."""
        if self.config.name_priority:
            return self.config.name_priority
        ranked = sorted(
            self.sources, key=lambda s: (s.source.name_rank is None, s.source.name_rank, s.name)
        )
        return tuple(s.name for s in ranked)

    def load_options(self, **overrides: Any) -> LoadOptions:
        """How its sessions load: the name priority and delete guard sources.toml sets."""
        return LoadOptions(
            name_priority=self.name_priority(),
            max_delete_share=self.config.max_delete_share,
            **overrides,
        )

    def identity_sources(self) -> list[IdentitySource]:
        """Where people matching reads identity features: every feed that declares some,
        trusted in the order of the name priority."""
        priority = self.name_priority()
        return [
            IdentitySource(feed.load.table, feed.identity, priority.index(registered.name) + 1,
                           feed.load.scope)
            for registered, feed in self.feeds()
            if feed.identity
        ]  # fmt: skip

    def sync_log_names(self) -> list[str]:
        """Every feed's name in sync_log, synced yet or not."""
        return sorted(feed.asset for _, feed in self.feeds())

    def select_feeds(self, names: Sequence[str]) -> list[Feed]:
        """The feeds named (an asset, or a source for all its feeds); every feed when none is."""
        if not names:
            return [feed for _, feed in self.feeds()]
        chosen: dict[str, Feed] = {}
        for name in names:
            matches = [feed for source, feed in self.feeds() if name in (feed.asset, source.name)]
            if not matches:
                known = sorted({s.name for s in self} | {f.asset for _, f in self.feeds()})
                raise ValueError(f"no source or feed named {name!r}; known: {', '.join(known)}")
            chosen.update((feed.asset, feed) for feed in matches)
        return list(chosen.values())


def source_module(entry: SourceEntry) -> str:
    return entry.module or f"{SOURCES_PACKAGE}.{entry.name}"


def _folder(name: str, module: str) -> Path:
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.submodule_search_locations is None:
        raise RegistryError(
            f"source {name!r}: sources.toml has an entry for it, but there is no package "
            f"{module} (a folder costudy_pipelines/sources/{name}/ with an __init__.py)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    missing = [piece for piece in PIECES if not (folder / f"{piece}.py").exists()]
    if missing:
        raise RegistryError(
            f"source {name!r} ({folder}): missing {', '.join(f'{p}.py' for p in missing)}; "
            "a source folder holds spec.py, records.py, client.py and sandbox.py (and defs.py "
            "unless spec.py declares an api or a database)"
        )
    return folder


def _declaration(name: str, module: str) -> Source:
    try:
        spec_module = importlib.import_module(f"{module}.spec")
    except ImportError as exc:
        raise RegistryError(f"source {name!r}: cannot import {module}.spec: {exc}") from exc
    source = getattr(spec_module, "SOURCE", None)
    if not isinstance(source, Source):
        raise RegistryError(
            f"source {name!r}: {module}.spec must define SOURCE = Source(...), found "
            f"{type(source).__name__}"
        )
    if source.name != name:
        raise RegistryError(
            f"source {name!r}: {module}.spec declares the name {source.name!r}; the folder, "
            "the sources.toml entry and Source.name must agree"
        )
    if not source.owners:
        raise RegistryError(f"source {name!r}: Source.owners is empty (who answers for it?)")
    return source


def _settings(source: Source, entry: SourceEntry) -> Any:
    if source.settings is None:
        if entry.settings:
            raise RegistryError(
                f"{entry.path}: [sources.{entry.name}] has unknown keys "
                f"{sorted(entry.settings)}; known: module, available_from, enabled"
            )
        return None
    known = {f.name for f in dataclasses.fields(source.settings)}
    unknown = sorted(set(entry.settings) - known)
    if unknown:
        raise RegistryError(
            f"{entry.path}: [sources.{entry.name}] has unknown keys {unknown}; known: "
            f"{sorted(known | {'module', 'available_from', 'enabled'})}"
        )
    try:
        return source.settings(**entry.settings)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{entry.path}: [sources.{entry.name}]: {exc}") from None


def _registered(feed: Feed, source: Source, bounds: AmountBounds) -> Feed:
    """The feed as it loads: its source's family, the configured amount bounds."""
    load = feed.load.for_source(source.name)
    if isinstance(load.validator, SchemaValidator):
        load = dataclasses.replace(load, validator=load.validator.with_amount_bounds(bounds))
    return dataclasses.replace(feed, load=load)


def _feeds(source: Source, settings: Any, bounds: AmountBounds) -> tuple[Feed, ...]:
    feeds = tuple(_registered(feed, source, bounds) for feed in source.feeds(settings))
    for feed in feeds:
        if feed.load.window_column is None and source.schedule is Schedule.DAILY:
            raise RegistryError(
                f"source {source.name!r}: feed {feed.asset!r} is synced by day but its load "
                "spec has no window_column"
            )
    return feeds


def _check_across(sources: list[RegisteredSource]) -> None:
    ranks: dict[int, str] = {}
    assets: dict[str, str] = {}
    for registered in sources:
        source = registered.source
        if source.name_rank is not None:
            holder = ranks.setdefault(source.name_rank, source.name)
            if holder != source.name:
                raise RegistryError(
                    f"sources {holder!r} and {source.name!r} share name-priority rank "
                    f"{source.name_rank}: give each source its own rank"
                )
        for feed in registered.feeds:
            other = assets.setdefault(feed.asset, source.name)
            if other != source.name:
                raise RegistryError(
                    f"asset {feed.asset!r} is declared by both {other!r} and {source.name!r}"
                )


def source_folders() -> list[str]:
    """The source folders of this package (each holding a spec.py)."""
    root = Path(__file__).parent
    return sorted(path.parent.name for path in root.glob("*/spec.py"))


def build_registry(config: SourcesConfig) -> Registry:
    """Load and check every source the config lists, in the config's order; a folder here
    without an entry is an error (it would otherwise be silently left out)."""
    listed = {entry.name for entry in config.sources}
    unlisted = [name for name in source_folders() if name not in listed]
    if unlisted:
        raise RegistryError(
            f"{config.path}: no [sources.<name>] entry for the source folder(s) {unlisted}; "
            "add one (with `enabled = false` to keep a source off)"
        )
    loaded = []
    for entry in (entry for entry in config.sources if entry.enabled):
        module = source_module(entry)
        folder = _folder(entry.name, module)
        source = _declaration(entry.name, module)
        if source.api is None and source.database is None and not (folder / "defs.py").exists():
            raise RegistryError(
                f"source {entry.name!r} ({folder}): missing defs.py; a source whose spec.py "
                "declares neither an api nor a database builds its own assets there"
            )
        settings = _settings(source, entry)
        feeds = _feeds(source, settings, config.amount_bounds)
        loaded.append(RegisteredSource(source, entry, module, settings, feeds, config))
    _check_across(loaded)
    registry = Registry(config, tuple(loaded))
    options = registry.load_options()
    registry = Registry(config, tuple(dataclasses.replace(s, load_options=options) for s in loaded))
    names = {s.name for s in loaded}
    unranked = names - set(config.name_priority or names)
    if unranked:
        raise RegistryError(
            f"{config.path}: [sync] name_priority leaves out {sorted(unranked)}; list every "
            "source, or remove the key to use each source's name_rank"
        )
    return registry


@cache
def _registry_for(path: Path, mtime: float, partitions_start: str | None) -> Registry:
    return build_registry(load_sources_config(path))


def load_registry(path: Path | None = None) -> Registry:
    """The registry of sources.toml (COSTUDY_SOURCES_CONFIG), loaded once per file version
    (and value of COSTUDY_PARTITIONS_START, which overrides its partitions_start)."""
    from costudy_pipelines.sources.config import PARTITIONS_START_VAR, config_path

    resolved = (path or config_path()).resolve()
    try:
        mtime = resolved.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _registry_for(resolved, mtime, os.environ.get(PARTITIONS_START_VAR))
