"""Replaying rejects as an operator: fault → fix → replay → exactly one effect, through the
command line and the Dagster job, and rejects of a row-hash source resolved by the row's
place when the fixed row arrives (Sheets sandbox, real warehouse)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.loading import sync_session
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.lib.views import VIEWS_FOLDER, apply_view, read_view
from costudy_pipelines.sandbox.servers import SheetsServer
from costudy_pipelines.sources.elective.spec import ElectiveSettings
from costudy_pipelines.sources.registry import RegisteredSource, load_registry
from costudy_pipelines.sources.sheets.defs import GoogleSheetsResource, sheet_asset
from costudy_pipelines.sources.sheets.spec import SheetsSettings
from costudy_pipelines_tests.replay.support import (
    costudy,
    op_metadata,
    replay_job,
    use_databases,
)
from costudy_pipelines_tests.sources.elective.test_client import (
    ORDERS_HEADER,
    orders_row,
    write_csv,
)
from costudy_pipelines_tests.sources.elective.test_defs import sync as elective_sync

FEED = "sheet_workshop_signups"
CONFIGURED_HEADER = 'email = "Email Address"'
# The form's export names its email column "Email": the configured header misses it.
ROWS = [
    {"Email": email, "Full Name": name, "Amount Paid": amount, "Timestamp": day}
    for email, name, amount, day in (
        ("ann@example.com", "Ann", "10", "2024-03-01"),
        ("bob@example.com", "Bob", "20", "2024-03-02"),
        ("", "Cy", "30", "2024-03-03"),
    )
]


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def sources_config(tmp_path: Path, email_header: str) -> Path:
    """sources.toml with the workshop sheet's email column mapped to `email_header`."""
    text = (PROJECT_ROOT / "sources.toml").read_text()
    assert CONFIGURED_HEADER in text
    path = tmp_path / f"sources-{email_header.replace(' ', '_')}.toml"
    path.write_text(text.replace(CONFIGURED_HEADER, f'email = "{email_header}"'))
    return path


@pytest.fixture
def rejected(warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fault: the sheet synced with the wrong email header, every row rejected. Then the
    fix: sources.toml names the right header. Returns the warehouse URL."""
    use_databases(monkeypatch, tmp_path, WAREHOUSE_DB_URL=warehouse_url)
    monkeypatch.setenv("COSTUDY_SOURCES_CONFIG", str(sources_config(tmp_path, "Email Address")))
    report = sync_session(warehouse_url, load_registry().feed(FEED).load, ROWS, full=True)
    assert (report.inserted, report.rejected) == (0, 3)
    monkeypatch.setenv("COSTUDY_SOURCES_CONFIG", str(sources_config(tmp_path, "Email")))
    return warehouse_url


def table_state(url: str) -> list[tuple]:
    return query(url, "select email, amount, xmin::text from sheet_rows order by email")


def test_rejects_list_and_replay_load_each_fixed_record_once(rejected: str) -> None:
    listed = costudy("rejects", "list", "--source", "sheets")
    assert listed.exit_code == 0, listed.output
    assert "3 unresolved reject(s)" in listed.output and FEED in listed.output
    assert listed.output.count("no email column (looked for 'Email Address'") == 3

    nothing = costudy("rejects", "replay", "--source", FEED, "--reason", "no such reason")
    assert nothing.exit_code == 0 and nothing.stdout == ""

    replayed = costudy("rejects", "replay", "--source", FEED)
    assert replayed.exit_code == 0, replayed.output
    [summary] = [json.loads(line) for line in replayed.stdout.splitlines()]
    assert summary["asset"] == FEED
    assert (summary["replayed"], summary["resolved"], summary["loaded"]) == (3, 2, 2)
    assert summary["still_rejected"] == 1
    [(reason, count)] = summary["still_rejected_by_reason"].items()
    assert count == 1 and "email" in reason
    after_first = table_state(rejected)
    assert [(email, str(amount)) for email, amount, _ in after_first] == [
        ("ann@example.com", "10"),
        ("bob@example.com", "20"),
    ]
    assert query(rejected, "select count(*) from sync_rejects where resolved_at is null") == [(1,)]

    again = costudy("rejects", "replay", "--source", "sheets")
    [summary] = [json.loads(line) for line in again.stdout.splitlines()]
    assert (summary["replayed"], summary["resolved"], summary["loaded"]) == (1, 0, 0)
    assert table_state(rejected) == after_first  # same rows, same row versions: no effect
    replays = query(rejected, "select count(*) from sync_log where partition_key = 'replay'")
    assert replays == [(2,)]


def test_an_unknown_source_is_refused_with_the_known_ones(rejected: str) -> None:
    result = costudy("rejects", "replay", "--source", "sheet_nope")
    assert result.exit_code == 1
    assert "no source or feed named 'sheet_nope'" in result.output and FEED in result.output
    assert query(rejected, "select count(*) from sync_log where partition_key = 'replay'") == [(0,)]


def test_the_replay_rejects_job_takes_the_filters_as_run_config(rejected: str) -> None:
    [(bob_id,)] = query(rejected, "select id from sync_rejects where raw->>'Full Name' = 'Bob'")
    resources = {"warehouse_db": PostgresResource(url=rejected, env_var="WAREHOUSE_DB_URL")}
    job = replay_job("replay_rejects", resources)
    run_config = {"ops": {"replay_selected_rejects": {"config": {"ids": [bob_id]}}}}

    result = job.execute_in_process(run_config=run_config)

    metadata = op_metadata(result, "replay_selected_rejects")
    assert (metadata["replayed"], metadata["resolved"], metadata["still_rejected"]) == (1, 1, 0)
    assert metadata["feeds"][0]["asset"] == FEED
    assert query(rejected, "select email from sheet_rows") == [("bob@example.com",)]
    [(resolved_by,)] = query(
        rejected, f"select resolved_by_run from sync_rejects where id = {bob_id}"
    )
    assert resolved_by == result.run_id

    second = job.execute_in_process(run_config=run_config)
    assert op_metadata(second, "replay_selected_rejects")["replayed"] == 0


def open_rejects(url: str) -> list[tuple]:
    return query(url, "select record_key from sync_rejects where resolved_at is null order by 1")


# -- a row-hash source: the fixed row resolves its reject by its place in the sheet ---------

KEY = "1workshopKeyForReplays"
HEADER = ["Email", "Name", "Amount", "Date"]


def sheet_source(columns: dict[str, str] | None = None) -> RegisteredSource:
    worksheet: dict[str, Any] = {
        "name": "signups_replay",
        "spreadsheet_key": KEY,
        "worksheet": "Form",
    }
    worksheet |= {"columns": columns} if columns else {}
    settings = SheetsSettings(worksheets=[worksheet])
    registered = load_registry().source("sheets")
    return registered.with_settings(settings)


def sync_sheet(
    rows: list[list[str]], warehouse_url: str, columns: dict[str, str] | None = None
) -> dg.ExecuteInProcessResult:
    source = sheet_source(columns)
    with SheetsServer({KEY: {"title": "Signups", "worksheets": {"Form": rows}}}) as server:
        return dg.materialize(
            [sheet_asset(source, source.feeds[0])],
            resources={
                "google_sheets": GoogleSheetsResource(api_url=server.base_url),
                "warehouse_db": PostgresResource(url=warehouse_url, env_var="WAREHOUSE_DB_URL"),
            },
        )


def test_a_sheet_rows_reject_resolves_when_the_fixed_row_is_synced(warehouse_url: str) -> None:
    ann = ["ann@example.com", "Ann", "10", "2024-03-01"]
    broken = ["bob-at-example.com", "Bob", "20", "2024-03-02"]
    first = sync_sheet([HEADER, ann, broken], warehouse_url)
    [(reject_id, place, reason)] = query(
        warehouse_url, "select id, record_key, reason from sync_rejects where resolved_at is null"
    )
    assert place == "row 3" and "bob-at-example.com" in reason

    unchanged = sync_sheet([HEADER, ann, broken], warehouse_url)  # still broken: stays open
    assert query(warehouse_url, "select count(*) from sync_rejects where resolved_at is null") == [
        (1,)
    ]

    fixed = sync_sheet([HEADER, ann, ["bob@example.com", "Bob", "20", "2024-03-02"]], warehouse_url)

    materialization = fixed.asset_materializations_for_node(fixed.all_node_events[0].node_name)[0]
    assert materialization.metadata["rejects_resolved_by_place"].value == 1
    assert query(
        warehouse_url, f"select resolved_by_run from sync_rejects where id = {reject_id}"
    ) == [(fixed.run_id,)]
    live = "select email from sheet_rows where deleted_at is null order by email"
    assert query(warehouse_url, live) == [("ann@example.com",), ("bob@example.com",)]
    assert first.success and unchanged.success


def test_a_resync_after_a_mapping_fix_resolves_the_rejects_by_place(warehouse_url: str) -> None:
    rows = [
        HEADER,
        ["ann@example.com", "Ann", "10", "2024-03-01"],
        ["bob@example.com", "Bob", "20", "2024-03-02"],
    ]
    sync_sheet(rows, warehouse_url, columns={"email": "Email Address"})
    assert open_rejects(warehouse_url) == [("row 2",), ("row 3",)]

    fixed = sync_sheet(rows, warehouse_url)  # the same rows, now mapped: they load

    assert open_rejects(warehouse_url) == []
    assert query(warehouse_url, "select count(*) from sheet_rows where deleted_at is null") == [
        (2,)
    ]
    assert query(warehouse_url, "select distinct resolved_by_run from sync_rejects") == [
        (fixed.run_id,)
    ]


def test_the_rejects_view_counts_open_rejects_by_feed_and_reason(rejected: str) -> None:
    with psycopg.connect(rejected) as conn:
        apply_view(conn, read_view(VIEWS_FOLDER / "rejects_by_reason.sql"))
        conn.execute(
            "update sync_rejects set resolved_at = now()"
            " where id = (select min(id) from sync_rejects)"
        )
    open_ids = [
        i
        for (i,) in query(
            rejected, "select id from sync_rejects where resolved_at is null order by id"
        )
    ]
    [(feed, reason, count, sample_ids)] = query(
        rejected, "select feed, reason, rejects, sample_ids from rejects_by_reason"
    )
    assert feed == "sheet_workshop_signups"  # the feed's one name: its asset's
    assert reason.startswith("no email column") and (count, sample_ids) == (2, open_ids)


def test_an_elective_reject_resolves_when_its_export_line_is_fixed(
    tmp_path: Path, warehouse_url: str
) -> None:
    header = [*ORDERS_HEADER, "Email"]
    good = [[*orders_row(n), f"buyer{n}@example.com"] for n in range(2)]
    write_csv(tmp_path / "orders.csv", header, [*good, [*orders_row(2), "buyer2-at-example.com"]])
    assert elective_sync(tmp_path, warehouse_url, ElectiveSettings())["rejected"] == 1
    [(place,)] = open_rejects(warehouse_url)
    assert place == "orders.csv line 4"  # the header is line 1

    write_csv(tmp_path / "orders.csv", header, [*good, [*orders_row(2), "buyer2@example.com"]])
    fixed = elective_sync(tmp_path, warehouse_url, ElectiveSettings())

    assert (fixed["inserted"], fixed["rejected"]) == (1, 0)
    assert open_rejects(warehouse_url) == []
    assert query(warehouse_url, "select count(*) from elective_rows") == [(3,)]
