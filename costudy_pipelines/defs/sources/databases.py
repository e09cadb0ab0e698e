"""The application databases: people behind website events, platform users, course orders."""

import dagster as dg

from costudy_pipelines.defs.resources import PostgresResource, database_resource_key
from costudy_pipelines.defs.sources.sync import (
    BACKFILL_POLICY,
    DAILY,
    WAREHOUSE_SCHEMA,
    SyncConfig,
    source_definitions,
    sync_daily,
)
from costudy_pipelines.lib.loading import SourceSpec
from costudy_pipelines.lib.source_sync import DATABASE_SOURCES, DatabaseSource, database_pages


def database_asset(source: DatabaseSource) -> tuple[dg.AssetsDefinition, SourceSpec]:
    database = database_resource_key(source.database)

    @dg.asset(
        name=source.name,
        deps=[WAREHOUSE_SCHEMA],
        partitions_def=DAILY,
        backfill_policy=BACKFILL_POLICY,
        pool=database,  # parallel backfill ranges share the application database's load
        group_name="sources",
        kinds={"postgres"},
        tags={"costudy/source": source.family},
        required_resource_keys={database, "warehouse_db"},
        description=f"Rows of {source.extract.name} created on the partition's day, "
        f"into {source.spec.table}.",
    )
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig) -> dg.MaterializeResult:
        source_db: PostgresResource = getattr(context.resources, database)
        return sync_daily(
            context,
            config,
            context.resources.warehouse_db,
            source.spec,
            source.family,
            database_pages(source, source_db.engine),
        )

    return _asset, source.spec


defs = source_definitions([database_asset(source) for source in DATABASE_SOURCES])
