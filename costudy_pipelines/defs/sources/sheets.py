"""Google Sheets: one full-sync asset per worksheet listed in sources.toml."""

import time
from collections.abc import Iterator

import dagster as dg
import gspread

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.defs.sources.sync import (
    SOURCES,
    WAREHOUSE_SCHEMA,
    SyncConfig,
    run_sync,
    source_definitions,
    sync_result,
)
from costudy_pipelines.lib.clients.base import Record
from costudy_pipelines.lib.clients.sheets import SheetSource, SheetsReader
from costudy_pipelines.lib.clients.sheets_transport import gspread_client
from costudy_pipelines.lib.source_config import SheetConfig
from costudy_pipelines.lib.source_sync import sheet_records, sheet_spec
from costudy_pipelines.lib.validation.sheets import SheetRowValidator

READ_ONLY_SCOPES = ("https://www.googleapis.com/auth/spreadsheets.readonly",)


class GoogleSheetsResource(dg.ConfigurableResource):
    """A service account (GOOGLE_SERVICE_ACCOUNT_FILE), or another API base (sandbox) + token."""

    service_account_file: str | None = None
    api_url: str | None = None
    token: str | None = None

    def client(self) -> gspread.Client:
        credentials = None
        if self.service_account_file:
            from google.oauth2.service_account import Credentials

            credentials = Credentials.from_service_account_file(
                self.service_account_file, scopes=READ_ONLY_SCOPES
            )
        return gspread_client(self.api_url or None, credentials, token=self.token)


def sheet_asset(sheet: SheetConfig) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"sheet_{sheet.name}",
        pool="sheets_api",
        deps=[WAREHOUSE_SCHEMA],
        group_name="sources",
        kinds={"googlesheets", "postgres"},
        tags={"costudy/source": "sheets"},
        description=f"Worksheet {sheet.worksheet!r} of spreadsheet {sheet.spreadsheet_key}, "
        "fully synced into sheet_rows (rows gone from the sheet are soft-deleted).",
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: SyncConfig,
        google_sheets: GoogleSheetsResource,
        warehouse_db: PostgresResource,
    ) -> dg.MaterializeResult:
        started = time.monotonic()
        reader = SheetsReader(google_sheets.client)
        run_spec = sheet_spec(sheet)  # this run's own validator, told the sheet's time zone
        validator = run_spec.validator
        assert isinstance(validator, SheetRowValidator)

        def records() -> Iterator[Record]:
            # read inside the session, so that a failed read is recorded as its failure
            values = reader.read(SheetSource(sheet.spreadsheet_key, sheet.worksheet))
            validator.set_time_zone(values.time_zone)  # before the first row is validated
            yield from sheet_records(values.pages(reader.chunk_size))

        report = run_sync(
            context,
            warehouse_db,
            run_spec,
            records(),
            partition=None,
            full=True,
            force_delete=config.force_delete,
        )
        return sync_result([report], started, **reader.counters.as_metadata())

    return _asset


defs = source_definitions(
    [(sheet_asset(sheet), sheet_spec(sheet)) for sheet in SOURCES.sheets],
    resources={
        "google_sheets": GoogleSheetsResource(
            service_account_file=dg.EnvVar("GOOGLE_SERVICE_ACCOUNT_FILE"),
            api_url=dg.EnvVar("GOOGLE_SHEETS_API_URL"),
            token=dg.EnvVar("GOOGLE_SHEETS_TOKEN"),
        )
    },
)
