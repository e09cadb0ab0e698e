"""Whop: payments, memberships and users, read by day through the v1 cursor API."""

import dagster as dg

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.defs.sources.sync import (
    BACKFILL_POLICY,
    DAILY,
    WAREHOUSE_SCHEMA,
    SyncConfig,
    source_definitions,
    sync_daily,
)
from costudy_pipelines.lib.clients.http import RetryPolicy
from costudy_pipelines.lib.clients.whop import WHOP_V1_URL, WhopClient
from costudy_pipelines.lib.loading import SourceSpec
from costudy_pipelines.lib.source_sync import WHOP_SPECS


class WhopResource(dg.ConfigurableResource):
    """The Whop API. The key comes from WHOP_API_KEY; WHOP_API_URL points elsewhere (sandbox).

    retry_attempts / retry_backoff_s: how hard one request is retried on 429 and 5xx answers
    (the server's Retry-After wins over the backoff) before the sync fails.
    """

    api_key: str
    base_url: str = WHOP_V1_URL
    company_id: str | None = None
    retry_attempts: int = RetryPolicy.max_attempts
    retry_backoff_s: float = RetryPolicy.initial_backoff_s

    def client(self) -> WhopClient:
        retry = RetryPolicy(
            max_attempts=self.retry_attempts, initial_backoff_s=self.retry_backoff_s
        )
        return WhopClient(
            self.api_key, base_url=self.base_url, company_id=self.company_id, retry=retry
        )


def whop_asset(resource: str, spec: SourceSpec) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.name,
        partitions_def=DAILY,
        backfill_policy=BACKFILL_POLICY,
        pool="whop_api",  # parallel partitions share the API's rate limit
        deps=[WAREHOUSE_SCHEMA],
        group_name="sources",
        kinds={"whop", "postgres"},
        tags={"costudy/source": "whop"},
        description=f"Whop {resource} created on the partition's day, upserted into {spec.table}.",
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: SyncConfig,
        whop: WhopResource,
        warehouse_db: PostgresResource,
    ) -> dg.MaterializeResult:
        with whop.client() as client:
            result = sync_daily(
                context,
                config,
                warehouse_db,
                spec,
                "whop",
                lambda window: client.pages(resource, window),
            )
            result.metadata.update(client.counters.as_metadata())
        return result

    return _asset


defs = source_definitions(
    [(whop_asset(resource, spec), spec) for resource, spec in WHOP_SPECS.items()],
    resources={
        "whop": WhopResource(api_key=dg.EnvVar("WHOP_API_KEY"), base_url=dg.EnvVar("WHOP_API_URL"))
    },
)
