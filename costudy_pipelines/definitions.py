"""The one `Definitions` of costudy-pipelines: every `defs` found under costudy_pipelines.defs."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import dagster as dg

from costudy_pipelines import defs as defs_package
from costudy_pipelines.defs.freshness import with_source_freshness
from costudy_pipelines.defs.warehouse_views import with_pattern_deps


def _module_definitions() -> Iterator[dg.Definitions]:
    """Each module under defs/ contributes its own `defs`: adding a source is adding a module."""
    modules = pkgutil.walk_packages(defs_package.__path__, defs_package.__name__ + ".")
    for info in sorted(modules, key=lambda module: module.name):
        module = importlib.import_module(info.name)
        module_defs = getattr(module, "defs", None)
        if isinstance(module_defs, dg.Definitions):
            yield module_defs


# Cross-module wiring on the merged whole: freshness policies on the source assets, and the
# views' upstream patterns (sheet_*) resolved against every asset key.
defs = with_pattern_deps(with_source_freshness(dg.Definitions.merge(*_module_definitions())))
