"""GoHighLevel (LeadConnector v2): contacts of every configured location, by dateAdded day.

Each day partition's materialization carries `source_reported_count`: the contacts the
search API reported for the day (its `total`, summed over the locations).
"""

from collections.abc import Iterable
from itertools import chain

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
from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.clients.ghl import GHL_URL, ContactSearch, GhlClient, reported_total
from costudy_pipelines.lib.source_sync import GHL_SPEC, Page


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
    backfill_policy=BACKFILL_POLICY,
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
    searches: dict[TimeWindow, list[ContactSearch]] = {}
    try:

        def extract(window: TimeWindow) -> Iterable[Page]:
            # search: server-side dateAdded filter, 500 per page (the list endpoint has none)
            searches[window] = [client.search_contacts(window) for client in clients]
            return chain.from_iterable(searches[window])

        def reported(window: TimeWindow) -> int | None:
            # the search's total of each location, for counts_match_source
            return reported_total(searches.pop(window))

        result = sync_daily(context, config, warehouse_db, GHL_SPEC, "ghl", extract, reported)
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
