"""The one `Definitions` of costudy-pipelines.

Assembled from two places, then shared policy applied once:
- the defs folder (costudy_pipelines/defs/): cross-cutting Dagster objects (migrations,
  users, views, reverse sync, jobs, automation), loaded the `dg` way;
- the registry of sources: each registered source folder's defs.py builds its assets,
  checks and resources from its declaration (costudy_pipelines/sources/registry.py).

Policy from the registry: every source asset gets its source's freshness policy; every asset
gets owners (its source's, or the platform team) and a code reference to the file that
defines it; view assets get their `sheet_*`-style upstream patterns resolved.
"""

import functools
import importlib
import warnings
from collections.abc import Iterator
from datetime import timedelta

import dagster as dg

from costudy_pipelines.defs.warehouse_views import with_pattern_deps
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
# here, at import: load_from_defs_folder restores the warning filters it started with.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")


def source_definitions(registry: Registry) -> Iterator[dg.Definitions]:
    """Each registered source's Definitions, built by its folder's defs.py."""
    for source in registry:
        build = getattr(importlib.import_module(f"{source.module}.defs"), "build_defs", None)
        if build is None:
            raise RegistryError(
                f"source {source.name!r}: {source.module}.defs must define "
                "build_defs(source) -> dg.Definitions"
            )
        built = build(source)
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


def _freshness(source: RegisteredSource) -> dg.FreshnessPolicy:
    freshness = source.source.freshness
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=freshness.fail_hours),
        warn_window=timedelta(hours=freshness.warn_hours),
    )


def with_policies(defs: dg.Definitions, registry: Registry) -> dg.Definitions:
    """Freshness per source feed (and on `users`, which every source feeds), owners, and
    every feed as an input of sync_runs."""
    by_asset = {feed.asset: source for source, feed in registry.feeds()}
    daily = max(registry, key=lambda source: source.source.freshness.fail_hours)
    feeds = [dg.AssetKey(asset) for asset in by_asset]

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        name = spec.key.to_user_string()
        if name == "sync_runs":  # every session of every feed: refreshed after any sync
            spec = spec.merge_attributes(deps=feeds)
        source = by_asset.get(name) or (daily if name == "users" else None)
        if source is not None:
            spec = dg.apply_freshness_policy(spec, _freshness(source), overwrite_existing=False)
        if not spec.owners:
            spec = spec.replace_attributes(owners=PLATFORM_OWNERS)
        return spec

    # map_asset_specs is marked preview in 1.13 and would warn on every code-location load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_asset_specs(func=apply)


@functools.cache
@definitions_build()  # one Dagster load context; the result frozen from gc (load_context.py)
def project_definitions() -> dg.Definitions:
    """The project's Definitions, built once per process: what `defs` gives Dagster's tools,
    and what the demo, the CLI and the tests use."""
    registry = load_registry()
    merged = dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=PROJECT_ROOT),  # checkout or shipped/
        *source_definitions(registry),
    )
    with warnings.catch_warnings():  # code references are beta in 1.13
        warnings.simplefilter("ignore", dg.BetaWarning)
        referenced = dg.with_source_code_references(list(merged.assets or []))
    with_code = dg.Definitions(
        assets=referenced,
        asset_checks=merged.asset_checks,
        jobs=merged.jobs,
        schedules=merged.schedules,
        sensors=merged.sensors,
        resources=merged.resources,
        executor=merged.executor,
        loggers=merged.loggers,
    )
    return with_pattern_deps(with_policies(with_code, registry))


@dg.definitions
def defs() -> dg.Definitions:
    return project_definitions()
