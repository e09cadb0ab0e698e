"""The product's Sheets asset against the Sheets sandbox, into a real warehouse: dates are read
in the spreadsheet's own time zone (serial numbers too), and a spreadsheet not shared with the
service account fails the asset with what to do, recorded as the sync's failure."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
from psycopg.types.json import Jsonb

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.sandbox.servers import SheetsServer
from costudy_pipelines.sources.registry import RegisteredSource, load_registry
from costudy_pipelines.sources.sheets.defs import GoogleSheetsResource, sheet_asset
from costudy_pipelines.sources.sheets.spec import SheetsSettings

KEY = "1ledgerKeyForTimeZones"


def ledger_source() -> RegisteredSource:
    """The registered Sheets source, configured with this test's one worksheet."""
    worksheet = {"name": "ledger_tz", "spreadsheet_key": KEY, "worksheet": "Payments"}
    settings = SheetsSettings(worksheets=[worksheet])
    registered = load_registry().source("sheets")
    return registered.with_settings(settings)


ROWS = [
    ["Email", "Name", "Amount", "Date"],
    ["ann@example.com", "Ann", "10", "2024-03-01 09:00"],  # wall time in New York (EST)
    ["bob@example.com", "Bob", "20", "45474.375"],  # a serial number: 2024-07-01 09:00 (EDT)
    ["cy@example.com", "Cy", "30", "07/02/2024"],  # a configured format: midnight there
]


def materialize(server: SheetsServer, warehouse_url: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [sheet_asset(source := ledger_source(), source.feeds[0])],
        resources={
            "google_sheets": GoogleSheetsResource(api_url=server.base_url),
            "warehouse_db": PostgresResource(url=warehouse_url, env_var="WAREHOUSE_DB_URL"),
        },
        raise_on_error=False,
    )


def test_dates_are_read_in_the_spreadsheets_time_zone(warehouse_url: str) -> None:
    spreadsheet = {"title": "Ledger", "worksheets": {"Payments": ROWS}}
    with SheetsServer({KEY: {**spreadsheet, "time_zone": "America/New_York"}}) as server:
        assert materialize(server, warehouse_url).success
    with connect(warehouse_url, source="WAREHOUSE_DB_URL", autocommit=True) as warehouse:
        stored = dict(
            warehouse.execute("select email, occurred_at from sheet_rows order by email").fetchall()
        )
    assert stored == {
        "ann@example.com": datetime(2024, 3, 1, 14, 0, tzinfo=UTC),
        "bob@example.com": datetime(2024, 7, 1, 13, 0, tzinfo=UTC),
        "cy@example.com": datetime(2024, 7, 2, 4, 0, tzinfo=UTC),
    }


def test_a_spreadsheet_not_shared_fails_the_asset_saying_whom_to_share_it_with(
    warehouse_url: str,
) -> None:
    spreadsheet = {"title": "Ledger", "worksheets": {"Payments": ROWS}}
    with SheetsServer({KEY: spreadsheet}, not_shared=[KEY]) as server:
        result = materialize(server, warehouse_url)
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    message = str(failure.step_failure_data.error)
    for part in (f"worksheet 'Payments' of spreadsheet {KEY}", "HTTP 403", "share it with"):
        assert part in message, message
    with connect(warehouse_url, source="WAREHOUSE_DB_URL", autocommit=True) as warehouse:
        [(status, error)] = warehouse.execute(
            "select status, error_message from sync_log where target_table = 'sheet_rows'"
        ).fetchall()
    assert status == "FAILED" and "HTTP 403" in error


def test_a_sheets_history_under_its_old_name_becomes_its_feeds_on_its_next_sync(
    warehouse_url: str,
) -> None:
    """Before issue 25 every sheet's sessions and rejects were `sheet_rows` (the worksheet in
    their scope): its next sync renames them to its feed's one name, and no other sheet's."""
    scope = {"spreadsheet_id": KEY, "worksheet": "Payments"}
    other = {"spreadsheet_id": KEY, "worksheet": "Refunds"}
    with connect(warehouse_url, source="WAREHOUSE_DB_URL") as warehouse:
        for where in (scope, other):
            warehouse.execute(
                "insert into sync_log (source, target_table, scope, full_sync, status,"
                " completed_at) values ('sheet_rows', 'sheet_rows', %s, true, 'SUCCESS', now())",
                (Jsonb(where),),
            )
            warehouse.execute(
                "insert into sync_rejects (source, scope, fingerprint, raw, reason)"
                " values ('sheet_rows', %s, %s, '{}', 'no email')",
                (Jsonb(where), where["worksheet"].encode()),
            )
    spreadsheet = {"title": "Ledger", "worksheets": {"Payments": ROWS}}
    with SheetsServer({KEY: spreadsheet}) as server:
        assert materialize(server, warehouse_url).success
    with connect(warehouse_url, source="WAREHOUSE_DB_URL", autocommit=True) as warehouse:
        sessions = warehouse.execute(
            "select source, scope->>'worksheet', count(*) from sync_log group by 1, 2 order by 1"
        ).fetchall()
        rejects = warehouse.execute(
            "select source, scope->>'worksheet' from sync_rejects order by 1"
        ).fetchall()
    assert sessions == [("sheet_ledger_tz", "Payments", 2), ("sheet_rows", "Refunds", 1)]
    assert rejects == [("sheet_ledger_tz", "Payments"), ("sheet_rows", "Refunds")]
