"""The one builder of every API source's Dagster objects (a source whose spec.py declares
`api=Api(...)` needs no defs.py): one asset per feed, each day read by the reader its
client.py's open_feed opens, and one resource holding the connection settings its spec.py
names by variable."""

from typing import Any

import dagster as dg

from costudy_pipelines.defs._source_assets import daily_asset, source_definitions
from costudy_pipelines.sources.registry import Api, Feed, RegisteredSource


class ApiConnection(dg.ConfigurableResource):
    """An API source's connection settings (base URL, token, ...), each read from the
    environment variable its spec.py names: the UI shows the variable, never the value."""

    settings: dict[str, str]


def api_of(source: RegisteredSource) -> Api:
    if source.source.api is None:
        raise ValueError(f"source {source.name!r} declares no api in its spec.py")
    return source.source.api


def api_asset(source: RegisteredSource, feed: Feed) -> dg.AssetsDefinition:
    api = api_of(source)
    return daily_asset(
        source,
        feed,
        kinds=set(api.kinds),
        pool=api.pool,  # parallel partitions and the source's feeds share the API's limit
        resource_key=source.name,
        open_reader=lambda connection: source.open_reader(connection.settings, feed.asset),
    )


def api_definitions(source: RegisteredSource) -> dg.Definitions:
    """An API source's Definitions: its assets, their checks, and its connection resource."""
    settings: dict[str, Any] = {
        name: dg.EnvVar(variable) for name, variable in api_of(source).environment.items()
    }
    return source_definitions(
        [api_asset(source, feed) for feed in source.feeds],
        source,
        resources={source.name: ApiConnection(settings=settings)},
    )
