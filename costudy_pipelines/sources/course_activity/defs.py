"""Course activity's asset and checks, its MongoDB resource, and the check that the
learning-progress view (an asset of warehouse_views) reconciles with the activity table."""

from collections.abc import Iterator
from functools import partial

import dagster as dg

from costudy_pipelines.defs._source_assets import (
    SyncConfig,
    SyncEvent,
    feed_asset,
    source_definitions,
    sync_daily,
)
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.sources.course_activity.client import (
    DEFAULT_BATCH_SIZE,
    ActivityReader,
    activity_extract,
    course_user_emails,
)
from costudy_pipelines.sources.course_activity.progress import compare_progress
from costudy_pipelines.sources.registry import Feed, RegisteredSource

PROGRESS_VIEW = dg.AssetKey("course_learning_progress")


class MongoResource(dg.ConfigurableResource):
    """A MongoDB deployment: MONGO_URI (credentials and TLS as the URI says) and MONGO_DB.
    batch_size: documents per round trip (memory per page stays bounded by it)."""

    uri: str
    database: str
    batch_size: int = DEFAULT_BATCH_SIZE

    def reader(self) -> ActivityReader:
        return ActivityReader(self.uri, self.database, batch_size=self.batch_size)


def activity_asset(source: RegisteredSource, feed: Feed) -> dg.AssetsDefinition:
    # pool: the analytics deployment is shared with the course platform itself
    @feed_asset(
        source,
        feed,
        kinds={"mongodb"},
        resource_keys={"course_mongo", "course_db"},
        pool="course_mongo",
    )
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig) -> Iterator[SyncEvent]:
        resources = context.resources
        with resources.course_mongo.reader() as reader:
            emails = partial(course_user_emails, resources.course_db.engine)
            extract = activity_extract(reader, emails)
            yield from sync_daily(
                context, config, resources.warehouse_db, source, feed, extract, reader.count
            )

    return _asset


@dg.asset_check(
    asset=PROGRESS_VIEW,
    name="reconciles_with_activity",
    blocking=True,
    description="Per day and user, the view's activities, tests completed and best accuracy "
    "equal the live rows of course_activity counted independently, and its total of tests "
    "equals the table's. A failure lists sample (day, user id) keys.",
)
def progress_reconciles(warehouse_db: PostgresResource) -> dg.AssetCheckResult:
    with warehouse_db.connect(autocommit=True) as conn:
        comparison = compare_progress(conn)
    return dg.AssetCheckResult(
        passed=comparison.agrees,
        metadata={
            "view_tests_completed": comparison.view_tests,
            "table_tests_completed": comparison.table_tests,
            "differing_day_users": comparison.differing,
            "differing_sample": ", ".join(comparison.sample) or "none",
        },
    )


def build_defs(source: RegisteredSource) -> dg.Definitions:
    defs = source_definitions(
        [activity_asset(source, feed) for feed in source.feeds],
        source,
        resources={
            "course_mongo": MongoResource(
                uri=dg.EnvVar("MONGO_URI"), database=dg.EnvVar("MONGO_DB")
            )
        },
    )
    return dg.Definitions.merge(defs, dg.Definitions(asset_checks=[progress_reconciles]))
