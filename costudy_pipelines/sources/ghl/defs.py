"""GoHighLevel's asset, its checks, and the LeadConnector API resource.

Each day partition's materialization carries `source_reported_count`: the contacts the
search API reported for the day (its `total`, summed over the locations); where the API gave
none, `source_count_missing` says why and `counts_match_source` warns about that day.
"""

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
from costudy_pipelines.sources.ghl.client import GHL_URL, DayContacts, GhlClient
from costudy_pipelines.sources.registry import Feed, RegisteredSource


class GoHighLevelResource(dg.ConfigurableResource):
    """Token from GHL_TOKEN; GHL_LOCATION_IDS is a comma-separated list of location ids."""

    token: str
    location_ids: str
    base_url: str = GHL_URL

    def locations(self) -> list[str]:
        return [location.strip() for location in self.location_ids.split(",") if location.strip()]

    def client(self, location_id: str) -> GhlClient:
        return GhlClient(self.token, location_id, base_url=self.base_url)


def contacts_asset(source: RegisteredSource, feed: Feed) -> dg.AssetsDefinition:
    @dg.asset(**asset_arguments(source, feed, kinds={"gohighlevel"}, pool="ghl_api"))
    def _asset(
        context: dg.AssetExecutionContext,
        config: SyncConfig,
        ghl: GoHighLevelResource,
        warehouse_db: PostgresResource,
    ) -> Iterator[SyncEvent]:
        clients = [ghl.client(location) for location in ghl.locations()]

        def run_figures() -> dict[str, int]:  # the run's, not a day's
            return {
                "locations": len(clients),
                "api_requests": sum(client.counters.requests for client in clients),
            }

        try:
            extract = DayContacts(clients)
            yield from sync_daily(
                context,
                config,
                warehouse_db,
                source,
                feed,
                extract,
                extract.reported,
                run_figures=run_figures,
            )
        finally:
            for client in clients:
                client.close()

    return _asset


def build_defs(source: RegisteredSource) -> dg.Definitions:
    return source_definitions(
        [contacts_asset(source, feed) for feed in source.feeds],
        source,
        resources={
            "ghl": GoHighLevelResource(
                token=dg.EnvVar("GHL_TOKEN"),
                location_ids=dg.EnvVar("GHL_LOCATION_IDS"),
                base_url=dg.EnvVar("GHL_API_URL"),
            )
        },
    )
