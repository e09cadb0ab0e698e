"""What the sources read from an application database (website, platform, course) share:
one asset per feed, each day's rows read through the database's resource."""

import dagster as dg

from costudy_pipelines.defs._source_assets import daily_asset, source_definitions
from costudy_pipelines.defs.resources import database_resource_key
from costudy_pipelines.lib.clients import databases
from costudy_pipelines.sources.registry import Feed, RegisteredSource


def database_asset(
    source: RegisteredSource, feed: Feed, extract: databases.Extract, database: str
) -> dg.AssetsDefinition:
    return daily_asset(
        source,
        feed,
        kinds=set(),
        pool=f"{database}_db",  # one per database: parallel partitions never crowd its server
        resource_key=database_resource_key(database),
        open_reader=lambda source_db: databases.TableReader(source_db.engine, extract),
    )


def database_definitions(source: RegisteredSource) -> dg.Definitions:
    """A database source's Definitions (spec.py's Database): each feed's asset reads its
    extract through the database's resource."""
    database = source.source.database
    if database is None:
        raise ValueError(f"source {source.name!r} declares no database in its spec.py")
    extracts = database.extracts
    return source_definitions(
        [
            database_asset(source, feed, extracts[feed.asset], database.name)
            for feed in source.feeds
        ],
        source,
        resources={},
    )
