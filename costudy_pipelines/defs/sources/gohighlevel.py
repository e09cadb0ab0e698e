"""GoHighLevel (LeadConnector v2): contacts of every configured location, by dateAdded day."""

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
from costudy_pipelines.lib.clients.ghl import GHL_URL, GhlClient
from costudy_pipelines.lib.source_sync import GHL_SPEC, ghl_pages


class GoHighLevelResource(dg.ConfigurableResource):
    """Token from GHL_TOKEN; GHL_LOCATION_IDS is a comma-separated list of location ids."""

    token: str
    location_ids: str
    base_url: str = GHL_URL

    def locations(self) -> list[str]:
        return [location.strip() for location in self.location_ids.split(",") if location.strip()]

    def client(self, location_id: str) -> GhlClient:
        return GhlClient(self.token, location_id, base_url=self.base_url)


@dg.asset(
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    pool="ghl_api",
    deps=[WAREHOUSE_SCHEMA],
    group_name="sources",
    kinds={"gohighlevel", "postgres"},
    tags={"costudy/source": "ghl"},
    description="Contacts added on the partition's day, in every location, into ghl_contacts.",
)
def ghl_contacts(
    context: dg.AssetExecutionContext,
    config: SyncConfig,
    ghl: GoHighLevelResource,
    warehouse_db: PostgresResource,
) -> dg.MaterializeResult:
    clients = [ghl.client(location) for location in ghl.locations()]
    try:
        result = sync_daily(
            context,
            config,
            warehouse_db,
            GHL_SPEC,
            "ghl",
            lambda window: ghl_pages(clients, window),
        )
        result.metadata["locations"] = len(clients)
        result.metadata["api_requests"] = sum(client.counters.requests for client in clients)
        return result
    finally:
        for client in clients:
            client.close()


defs = source_definitions(
    [(ghl_contacts, GHL_SPEC)],
    resources={
        "ghl": GoHighLevelResource(
            token=dg.EnvVar("GHL_TOKEN"),
            location_ids=dg.EnvVar("GHL_LOCATION_IDS"),
            base_url=dg.EnvVar("GHL_API_URL"),
        )
    },
)
