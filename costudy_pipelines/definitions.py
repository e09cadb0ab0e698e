"""The one `Definitions` of costudy-pipelines.

Assembled from the registry of sources (costudy_pipelines/sources/registry.py), built once
here and passed in:
- each registered source folder's defs.py builds its assets, checks and resources from its
  declaration, with their owners, freshness and partitions (defs/_source_assets.py);
- `users`, fed by every feed (defs/users.py);
- the defs folder (costudy_pipelines/defs/): the cross-cutting Dagster objects (migrations,
  views, reverse sync, jobs, automation), loaded the `dg` way.

Then one pass over every asset: a code reference to the file that defines it, the platform
team as owner where none is set, and the dependencies only the whole project knows (sync_runs
on every feed, `users`' freshness, views' `sheet_*` upstream patterns).
"""

import gc

# Before the project's imports: what the process holds so far (Dagster, ~150,000 objects that
# live as long as it does) leaves the cyclic collector's view, so the full collections that
# the project's imports and build trigger do not walk it each time: 0.1-0.2 s of every process
# that loads the project (load_context.py freezes what the build adds).
gc.freeze()

import functools
import importlib
import importlib.util
import warnings
from collections.abc import Callable, Iterator
from fnmatch import fnmatch

import dagster as dg

from costudy_pipelines.defs import users
from costudy_pipelines.defs._api_sources import api_definitions
from costudy_pipelines.defs._database_sources import database_definitions
from costudy_pipelines.defs._source_assets import freshness_policy
from costudy_pipelines.defs.warehouse_views import UPSTREAM_PATTERNS
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.load_context import definitions_build
from costudy_pipelines.sources.registry import (
    RegisteredSource,
    Registry,
    RegistryError,
    load_registry,
)

PLATFORM_OWNERS = ["team:data-platform"]
# BackfillPolicy is beta in Dagster 1.13; single-run backfills are what the sources need. Set
# here, at import: building the defs folder restores the warning filters it started with.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")


def defs_folder() -> dg.Definitions:
    """The defs/ folder's Definitions (of the checkout, or shipped/ in a wheel), built at the
    folder rather than at the project's root as `load_from_defs_folder` does: the root adds
    the JSON schema of every installed component type to the repository's metadata (for the
    UI's component listing) and the components made in the UI, neither of which this project
    has; that JSON took ~0.15 s of every process that loads the project."""
    tree = dg.ComponentTree.for_project(path_within_project=PROJECT_ROOT)
    return tree.build_defs(tree.defs_module_path)


def source_definitions(registry: Registry) -> Iterator[dg.Definitions]:
    """Each registered source's Definitions, built by its folder's defs.py or, for an API or
    database source without one, by its generic builder (defs/_api_sources.py,
    defs/_database_sources.py)."""
    for source in registry:
        built = builder(source)(source)
        declared = {feed.asset for feed in source.feeds}
        made = {
            key.to_user_string()
            for asset in built.assets or []
            if isinstance(asset, dg.AssetsDefinition)
            for key in asset.keys
        }
        if declared - made:
            raise RegistryError(
                f"source {source.name!r}: defs.py builds no asset for feed(s) "
                f"{sorted(declared - made)}"
            )
        yield built


def own_defs(source: RegisteredSource) -> str | None:
    """The module of the folder's defs.py, if it has one."""
    module = f"{source.module}.defs"
    return module if importlib.util.find_spec(module) is not None else None


def builder(source: RegisteredSource) -> Callable[[RegisteredSource], dg.Definitions]:
    """The folder's own build_defs, else the generic builder its spec.py's declaration takes."""
    if own_defs(source) is None:
        return api_definitions if source.source.database is None else database_definitions
    build = getattr(importlib.import_module(f"{source.module}.defs"), "build_defs", None)
    if build is None:
        raise RegistryError(
            f"source {source.name!r}: {source.module}.defs must define "
            "build_defs(source) -> dg.Definitions"
        )
    return build


def project_policies(registry: Registry, keys: list[str]) -> Callable[[dg.AssetSpec], dg.AssetSpec]:
    """What only the whole project knows, as one function over every asset spec."""
    feeds = [dg.AssetKey(feed.asset) for _, feed in registry.feeds()]
    # `users` is fed by every source: late when the most lenient one is late
    lenient = max(registry, key=lambda source: source.source.freshness.fail_hours)

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        name = spec.key.to_user_string()
        if name == "sync_runs":  # every session of every feed: refreshed after any sync
            spec = spec.merge_attributes(deps=feeds)
        if name == "users":
            spec = dg.apply_freshness_policy(
                spec, freshness_policy(lenient), overwrite_existing=False
            )
        value = spec.metadata.get(UPSTREAM_PATTERNS)
        patterns = [p.strip() for p in str(getattr(value, "value", value) or "").split(",")]
        matches = [dg.AssetKey(k) for p in patterns if p for k in keys if fnmatch(k, p)]
        if matches:  # a view's `upstream: sheet_*`: one asset per configured sheet
            spec = spec.merge_attributes(deps=matches)
        return spec if spec.owners else spec.replace_attributes(owners=PLATFORM_OWNERS)

    return apply


@functools.cache
@definitions_build()  # one Dagster load context; the result frozen from gc (load_context.py)
def project_definitions() -> dg.Definitions:
    """The project's Definitions, built once per process: what `defs` gives Dagster's tools,
    and what the demo, the CLI and the tests use."""
    registry = load_registry()
    merged = dg.Definitions.merge(
        defs_folder(),
        users.build_defs(registry),
        *source_definitions(registry),
    )
    keys = [key.to_user_string() for key in merged.resolve_all_asset_keys()]
    apply = project_policies(registry, keys)
    with warnings.catch_warnings():  # code references are beta, map_asset_specs preview
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        assets = dg.with_source_code_references(list(merged.assets or []))
        return dg.Definitions(
            assets=assets,
            asset_checks=merged.asset_checks,
            jobs=merged.jobs,
            schedules=merged.schedules,
            sensors=merged.sensors,
            resources=merged.resources,
            executor=merged.executor,
            loggers=merged.loggers,
        ).map_asset_specs(func=apply)


@dg.definitions
def defs() -> dg.Definitions:
    return project_definitions()
