"""The source's Dagster objects: its asset (with the checks its feed implies) and resource."""

import dagster as dg

from costudy_pipelines.defs._source_assets import (
    SyncConfig,
    asset_arguments,
    source_definitions,
    sync_daily,
)
from costudy_pipelines.sources.registry import Feed, RegisteredSource

from .client import ContactsClient
from .sandbox import environment_names


class ContactsApiResource(dg.ConfigurableResource):
    """The API's base URL and token, from <NAME>_API_URL and <NAME>_TOKEN."""

    title: str
    base_url: str
    token: str

    def client(self) -> ContactsClient:
        return ContactsClient(self.title, self.base_url, self.token)


def contacts_asset(source: RegisteredSource, feed: Feed) -> dg.AssetsDefinition:
    @dg.asset(
        **asset_arguments(source, feed, kinds={"api"}, pool=f"{source.name}_api"),
        required_resource_keys={source.name, "warehouse_db"},
    )
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig) -> dg.MaterializeResult:
        api: ContactsApiResource = getattr(context.resources, source.name)
        with api.client() as client:
            warehouse = context.resources.warehouse_db
            return sync_daily(context, config, warehouse, source, feed, client.day, client.reported)

    return _asset


def build_defs(source: RegisteredSource) -> dg.Definitions:
    url_var, token_var = environment_names(source.name)
    resource = ContactsApiResource(
        title=source.source.title, base_url=dg.EnvVar(url_var), token=dg.EnvVar(token_var)
    )
    return source_definitions(
        [contacts_asset(source, feed) for feed in source.feeds],
        source,
        resources={source.name: resource},
    )
