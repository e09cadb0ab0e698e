"""Whop's assets (one per feed), their checks, and the Whop API resource."""

import dagster as dg

from costudy_pipelines.defs._source_assets import (
    SyncConfig,
    asset_arguments,
    source_definitions,
    sync_daily,
)
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.clients.http import RetryPolicy
from costudy_pipelines.sources.registry import Feed, RegisteredSource
from costudy_pipelines.sources.whop.client import WHOP_V1_URL, WhopClient


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


def whop_asset(source: RegisteredSource, feed: Feed) -> dg.AssetsDefinition:
    resource = feed.asset.removeprefix("whop_")  # the API's resource: payments, memberships...

    # pool: parallel partitions share the API's rate limit
    @dg.asset(**asset_arguments(source, feed, kinds={"whop"}, pool="whop_api"))
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
                source,
                feed,
                lambda window: client.pages(resource, window),
            )
            metadata = {**(result.metadata or {}), **client.counters.as_metadata()}
            if resource in ("memberships", "users"):  # emails from the members endpoint
                metadata.update(client.lookup_metadata())
        return result._replace(metadata=metadata)

    return _asset


def build_defs(source: RegisteredSource) -> dg.Definitions:
    return source_definitions(
        [whop_asset(source, feed) for feed in source.feeds],
        source,
        resources={
            "whop": WhopResource(
                api_key=dg.EnvVar("WHOP_API_KEY"), base_url=dg.EnvVar("WHOP_API_URL")
            )
        },
    )
