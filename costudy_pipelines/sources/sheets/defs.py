"""Google Sheets' assets (one per configured worksheet), their checks, and the API resource."""

import copy
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from psycopg.types.json import Jsonb

from costudy_pipelines.defs._source_assets import (
    SyncConfig,
    SyncEvent,
    feed_asset,
    run_sync,
    source_definitions,
    sync_result,
)
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.clients.base import Record
from costudy_pipelines.lib.loading.places import RowPlaces
from costudy_pipelines.sources.registry import Feed, RegisteredSource
from costudy_pipelines.sources.sheets.client import SheetSource, SheetsReader
from costudy_pipelines.sources.sheets.records import SheetRowValidator
from costudy_pipelines.sources.sheets.spec import (
    content_only,
    row_place,
    worksheet_of,
)
from costudy_pipelines.sources.sheets.transport import gspread_client

if TYPE_CHECKING:  # imported by the sheets sync only (gspread_client): ~0.2 s
    import gspread

ADOPT_HISTORY = (Path(__file__).parent / "adopt_history.sql").read_text()
READ_ONLY_SCOPES = ("https://www.googleapis.com/auth/spreadsheets.readonly",)


class GoogleSheetsResource(dg.ConfigurableResource):
    """A service account (GOOGLE_SERVICE_ACCOUNT_FILE), or another API base (sandbox) + token."""

    service_account_file: str | None = None
    api_url: str | None = None
    token: str | None = None

    def client(self) -> "gspread.Client":
        credentials = None
        if self.service_account_file:
            from google.oauth2.service_account import Credentials

            credentials = Credentials.from_service_account_file(
                self.service_account_file, scopes=READ_ONLY_SCOPES
            )
        return gspread_client(self.api_url or None, credentials, token=self.token)


def sheet_asset(source: RegisteredSource, feed: Feed) -> dg.AssetsDefinition:
    sheet = worksheet_of(source.settings, feed.asset)

    @feed_asset(
        source, feed, kinds={"googlesheets"}, resource_keys={"google_sheets"}, pool="sheets_api"
    )
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig) -> Iterator[SyncEvent]:
        google_sheets: GoogleSheetsResource = context.resources.google_sheets
        warehouse_db: PostgresResource = context.resources.warehouse_db
        started = time.monotonic()
        reader = SheetsReader(google_sheets.client)
        # this run's own validator, told the sheet's time zone once the sheet is read
        validator = copy.copy(feed.load.validator)
        run_feed = dataclasses.replace(
            feed, load=dataclasses.replace(feed.load, validator=validator)
        )
        with warehouse_db.connect() as conn:
            conn.execute(ADOPT_HISTORY, {"feed": feed.asset, "scope": Jsonb(dict(feed.load.scope))})
        assert isinstance(validator, SheetRowValidator)
        places = RowPlaces(run_feed.load, row_place, content_only)

        def records() -> Iterator[Record]:
            # read inside the session, so that a failed read is recorded as its failure
            values = reader.read(SheetSource(sheet.spreadsheet_key, sheet.worksheet))
            validator.set_time_zone(values.time_zone)  # before the first row is validated
            yield from places.track(row for page in values.pages(reader.chunk_size) for row in page)

        report = run_sync(
            context,
            warehouse_db,
            source,
            run_feed,
            records(),
            full=True,
            force_delete=config.force_delete,
        )
        with warehouse_db.connect() as conn:
            resolved = places.resolve(conn, context.run.run_id)
        yield sync_result(
            report, started, rejects_resolved_by_place=resolved, **reader.counters.as_metadata()
        )

    return _asset


def build_defs(source: RegisteredSource) -> dg.Definitions:
    return source_definitions(
        [sheet_asset(source, feed) for feed in source.feeds],
        source,
        resources={
            "google_sheets": GoogleSheetsResource(
                service_account_file=dg.EnvVar("GOOGLE_SERVICE_ACCOUNT_FILE"),
                api_url=dg.EnvVar("GOOGLE_SHEETS_API_URL"),
                token=dg.EnvVar("GOOGLE_SHEETS_TOKEN"),
            )
        },
    )
