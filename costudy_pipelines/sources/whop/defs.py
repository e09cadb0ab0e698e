"""Whop's assets (one per feed), their checks, and the Whop API resource."""

from collections.abc import Iterator

import dagster as dg

from costudy_pipelines.defs._source_assets import (
    SyncConfig,
    SyncEvent,
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
    ) -> Iterator[SyncEvent]:
        with whop.client() as client:

            def run_figures() -> dict[str, int | float]:
                """The run's, not a day's: HTTP counters, and the members lookups that gave
                memberships and users their emails."""
                figures = client.counters.as_metadata()
                if resource in ("memberships", "users"):
                    figures.update(client.lookup_metadata())
                return figures

            yield from sync_daily(
                context,
                config,
                warehouse_db,
                source,
                feed,
                lambda window: client.pages(resource, window),
                run_figures=run_figures,
            )

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
