"""What the sources read from an application database (website, platform, course) share:
one asset per feed, each day's rows read through the database's resource."""

from collections.abc import Iterator, Mapping

import dagster as dg

from costudy_pipelines.defs._source_assets import (
    SyncConfig,
    SyncEvent,
    asset_arguments,
    source_definitions,
    sync_daily,
)
from costudy_pipelines.defs.resources import PostgresResource, database_resource_key
from costudy_pipelines.lib.clients import databases
from costudy_pipelines.sources.registry import Feed, RegisteredSource


def database_asset(
    source: RegisteredSource, feed: Feed, extract: databases.Extract, database: str
) -> dg.AssetsDefinition:
    resource_key = database_resource_key(database)

    # pool: one per database, so parallel partitions never crowd the application's server
    @dg.asset(
        **asset_arguments(source, feed, kinds=set(), pool=f"{database}_db"),
        required_resource_keys={resource_key, "warehouse_db"},
    )
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig) -> Iterator[SyncEvent]:
        source_db: PostgresResource = getattr(context.resources, resource_key)
        yield from sync_daily(
            context,
            config,
            context.resources.warehouse_db,
            source,
            feed,
            lambda window: databases.extract_pages(source_db.engine, extract, window),
        )

    return _asset


def database_definitions(
    source: RegisteredSource, extracts: Mapping[str, databases.Extract], database: str
) -> dg.Definitions:
    """A database source's Definitions: `extracts` maps each feed's asset to what it reads."""
    return source_definitions(
        [database_asset(source, feed, extracts[feed.asset], database) for feed in source.feeds],
        source,
        resources={},
    )
