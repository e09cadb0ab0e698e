"""Load specs as the registry loads them, for tests that build one with a source's spec.py
function (a worksheet of their own, a validator's column mapping) instead of taking the
registry's feed."""

from typing import Any

from costudy_pipelines.lib.loading import LoadOptions, LoadSpec
from costudy_pipelines.sources.registry import load_registry


def registered(spec: LoadSpec) -> LoadSpec:
    """The spec with its source's family: the source folder whose records.py defines its
    validator (costudy_pipelines.sources.<name>.records), as the registry fills it."""
    parts = type(spec.validator).__module__.split(".")
    if parts[:2] != ["costudy_pipelines", "sources"]:
        raise ValueError(f"{spec.name}: its validator is not a source folder's ({parts})")
    return spec.for_source(parts[2])


def registry_options(**overrides: Any) -> LoadOptions:
    """The project's load options (sources.toml's name priority): what every asset's session
    runs with; a session given none ranks its own source's names alone."""
    return load_registry().load_options(**overrides)
