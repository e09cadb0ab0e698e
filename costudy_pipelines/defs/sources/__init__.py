"""One module per source: its client resource, its extract and its assets (group "sources")."""

import importlib
import pkgutil

import dagster as dg

SOURCE_GROUP = "sources"


def source_asset_keys() -> list[dg.AssetKey]:
    """Every source asset of every module here: what the unified users table is built from."""
    keys = []
    for info in pkgutil.iter_modules(__path__, __name__ + "."):
        module_defs = getattr(importlib.import_module(info.name), "defs", None)
        if isinstance(module_defs, dg.Definitions):
            for asset in module_defs.assets or []:
                if isinstance(asset, dg.AssetsDefinition):
                    keys += [k for k in asset.keys if asset.group_names_by_key[k] == SOURCE_GROUP]
    return sorted(keys, key=lambda key: key.to_user_string())
