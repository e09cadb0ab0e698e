"""The application databases: people behind website events, platform users, course orders."""

import dagster as dg

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.defs.sources.sync import (
    DAILY,
    SINGLE_RUN,
    WAREHOUSE_SCHEMA,
    SyncConfig,
    source_definitions,
    sync_daily,
)
from costudy_pipelines.lib.clients import databases as extracts
from costudy_pipelines.lib.loading import SourceSpec, sources


def database_asset(
    name: str, spec: SourceSpec, extract: extracts.Extract, database: str, family: str
) -> tuple[dg.AssetsDefinition, SourceSpec]:
    @dg.asset(
        name=name,
        deps=[WAREHOUSE_SCHEMA],
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN,
        group_name="sources",
        kinds={"postgres"},
        tags={"costudy/source": family},
        required_resource_keys={database, "warehouse_db"},
        description=f"Rows of {extract.name} created on the partition's day, into {spec.table}.",
    )
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig) -> dg.MaterializeResult:
        source_db: PostgresResource = getattr(context.resources, database)
        return sync_daily(
            context,
            config,
            context.resources.warehouse_db,
            spec,
            family,
            lambda window: extracts.extract_pages(source_db.engine, extract, window),
        )

    return _asset, spec


WEBSITE = {
    "vote": extracts.WEBSITE_VOTES,
    "demo_request": extracts.WEBSITE_DEMO_REQUESTS,
    "email_subscription": extracts.WEBSITE_EMAIL_SUBSCRIPTIONS,
    "contact_submission": extracts.WEBSITE_CONTACT_SUBMISSIONS,
}

defs = source_definitions(
    [
        *(
            database_asset(
                f"website_{extract.table}",
                sources.website_people(kind),
                extract,
                "website_db",
                "website",
            )
            for kind, extract in WEBSITE.items()
        ),
        database_asset(
            "platform_users",
            sources.platform_users(),
            extracts.PLATFORM_USERS,
            "platform_db",
            "platform",
        ),
        database_asset(
            "course_orders", sources.course_orders(), extracts.COURSE_ORDERS, "course_db", "course"
        ),
        database_asset(
            "course_enrollments",
            sources.course_enrollments(),
            extracts.COURSE_ENROLLMENTS,
            "course_db",
            "course",
        ),
    ]
)
