"""The one `Definitions` of costudy-pipelines: every `defs` found under costudy_pipelines.defs."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import dagster as dg

from costudy_pipelines import defs as defs_package


def _module_definitions() -> Iterator[dg.Definitions]:
    """Each module under defs/ contributes its own `defs`: adding a source is adding a module."""
    modules = pkgutil.walk_packages(defs_package.__path__, defs_package.__name__ + ".")
    for info in sorted(modules, key=lambda module: module.name):
        module = importlib.import_module(info.name)
        module_defs = getattr(module, "defs", None)
        if isinstance(module_defs, dg.Definitions):
            yield module_defs


defs = dg.Definitions.merge(*_module_definitions())
