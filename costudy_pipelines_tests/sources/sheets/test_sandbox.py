"""The Sheets server through the real gspread client (no Google credentials)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gspread
import httpx
import pytest
import requests

from costudy_pipelines.sandbox.servers import Fault, SheetsServer
from costudy_pipelines.sources.sheets.transport import gspread_client, rebase_url

PAYMENTS = [
    ["email", "name", "amount", "date", "note"],
    ["ann@example.com", "Ann", "12.50", "2024-03-01", ""],  # trailing empty cell
    [],  # an empty row in the middle stays
    ["  BOB@example.com ", "Bob O'Brien", "7", "2024-03-02"],
    ["", "", ""],  # trailing empty rows are trimmed
]
SPREADSHEETS: dict[str, Any] = {
    "sheet-payments": {
        "title": "Payments 2024",
        "worksheets": {"Sheet1": PAYMENTS, "Refunds Q1": [["email", "amount"], ["c@x.io", "-3"]]},
    },
    "sheet-leads": {"title": "Leads", "worksheets": {"Leads": [["email"], ["d@x.io"]]}},
}


@pytest.fixture
def server() -> Iterator[SheetsServer]:
    with SheetsServer(SPREADSHEETS) as sandbox:
        yield sandbox


@pytest.fixture
def gc(server: SheetsServer) -> gspread.Client:
    return gspread_client(server.base_url, timeout=5)


def test_gspread_reads_every_worksheet_of_several_spreadsheets(gc: gspread.Client) -> None:
    payments = gc.open_by_key("sheet-payments")
    assert payments.title == "Payments 2024"
    assert [ws.title for ws in payments.worksheets()] == ["Sheet1", "Refunds Q1"]
    assert payments.sheet1.get_all_values() == [
        ["email", "name", "amount", "date", "note"],
        ["ann@example.com", "Ann", "12.50", "2024-03-01", ""],
        ["", "", "", "", ""],
        ["  BOB@example.com ", "Bob O'Brien", "7", "2024-03-02", ""],
    ]
    assert payments.worksheet("Refunds Q1").get_all_records() == [{"email": "c@x.io", "amount": -3}]
    leads = gc.open_by_key("sheet-leads")
    assert leads.sheet1.title == "Leads"
    assert leads.sheet1.get_all_records() == [{"email": "d@x.io"}]


def test_the_requests_are_the_ones_gspread_makes_against_google(
    gc: gspread.Client, server: SheetsServer
) -> None:
    gc.open_by_key("sheet-payments").sheet1.get_all_records()
    assert [(r.method, r.path, r.query) for r in server.request_log] == [
        ("GET", "/v4/spreadsheets/sheet-payments", "includeGridData=false"),
        ("GET", "/v4/spreadsheets/sheet-payments", "includeGridData=false"),
        ("GET", "/v4/spreadsheets/sheet-payments/values/'Sheet1'", ""),
    ]


def test_values_are_ragged_and_range_is_the_whole_grid(server: SheetsServer) -> None:
    base = server.base_url + "/v4/spreadsheets/sheet-payments"
    values = httpx.get(base + "/values/%27Sheet1%27").json()
    assert values["range"] == "Sheet1!A1:Z1000"
    assert values["majorDimension"] == "ROWS"
    assert values["values"][1] == ["ann@example.com", "Ann", "12.50", "2024-03-01"]
    assert values["values"][2] == []
    assert len(values["values"]) == 4
    quoted = httpx.get(base + "/values/%27Refunds%20Q1%27%21A2%3AB2").json()
    assert quoted == {
        "range": "'Refunds Q1'!A2:B2",
        "majorDimension": "ROWS",
        "values": [["c@x.io", "-3"]],
    }
    empty = httpx.get(base + "/values/Sheet1%21C10%3AD12").json()
    assert empty == {"range": "Sheet1!C10:D12", "majorDimension": "ROWS"}  # no values key
    metadata = httpx.get(base, params={"includeGridData": "false"}).json()
    grid = metadata["sheets"][0]["properties"]["gridProperties"]
    assert grid == {"rowCount": 1000, "columnCount": 26}
    assert metadata["sheets"][1]["properties"]["index"] == 1


def test_unknown_spreadsheet_is_404_in_googles_shape(
    gc: gspread.Client, server: SheetsServer
) -> None:
    with pytest.raises(gspread.SpreadsheetNotFound):
        gc.open_by_key("no-such-sheet")
    answer = httpx.get(server.base_url + "/v4/spreadsheets/no-such-sheet")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}
    }


def test_a_spreadsheet_not_shared_is_403_in_googles_shape(
    gc: gspread.Client, server: SheetsServer
) -> None:
    server.set_shared("sheet-leads", False)
    with pytest.raises(PermissionError):  # what gspread's open_by_key makes of a 403
        gc.open_by_key("sheet-leads")
    for path in ("", "/values/Leads"):
        answer = httpx.get(f"{server.base_url}/v4/spreadsheets/sheet-leads{path}")
        assert answer.status_code == 403
        assert answer.json() == {
            "error": {
                "code": 403,
                "message": "The caller does not have permission",
                "status": "PERMISSION_DENIED",
            }
        }
    assert gc.open_by_key("sheet-payments").title == "Payments 2024"  # others stay shared
    server.set_shared("sheet-leads", True)
    assert gc.open_by_key("sheet-leads").title == "Leads"


def test_unknown_worksheet(gc: gspread.Client, server: SheetsServer) -> None:
    with pytest.raises(gspread.WorksheetNotFound):
        gc.open_by_key("sheet-leads").worksheet("Nope")
    answer = httpx.get(server.base_url + "/v4/spreadsheets/sheet-leads/values/%27Nope%27")
    assert answer.status_code == 400
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_injected_5xx_reaches_gspread_as_api_error(
    gc: gspread.Client, server: SheetsServer
) -> None:
    sheet = gc.open_by_key("sheet-leads").sheet1
    server.add_fault(
        Fault("error", path="/v4/spreadsheets/sheet-leads/values", status=503, count=1)
    )
    with pytest.raises(gspread.exceptions.APIError) as failure:
        sheet.get_all_values()
    assert failure.value.code == 503
    assert sheet.get_all_values() == [["email"], ["d@x.io"]]  # the fault fired once


def test_hang_past_the_client_timeout(server: SheetsServer) -> None:
    gc = gspread_client(server.base_url, timeout=0.3)
    server.add_fault(Fault("hang", seconds=5, count=1))
    with pytest.raises(requests.exceptions.ReadTimeout):
        gc.open_by_key("sheet-leads")


def test_data_replaced_while_running(gc: gspread.Client, server: SheetsServer) -> None:
    server.set_spreadsheet("sheet-new", "New", {"Sheet1": [["email"], ["e@x.io"]]})
    assert gc.open_by_key("sheet-new").sheet1.get_all_records() == [{"email": "e@x.io"}]
    assert server.delete_spreadsheet("sheet-new")
    with pytest.raises(gspread.SpreadsheetNotFound):
        gc.open_by_key("sheet-new")
    uploaded = httpx.put(
        server.base_url + "/_sandbox/data/sheet-http",
        json={"title": "Over HTTP", "worksheets": {"Data": [["a", "b"], ["1", "2"]]}},
    )
    assert uploaded.status_code == 200
    assert gc.open_by_key("sheet-http").worksheet("Data").get_all_records() == [{"a": 1, "b": 2}]
    bad = httpx.put(server.base_url + "/_sandbox/data/sheet-bad", json={"title": "No sheets"})
    assert bad.status_code == 400 and "worksheet" in bad.json()["error"]


def test_token_checked_when_configured() -> None:
    with SheetsServer(SPREADSHEETS, token="sandbox-token") as server:
        with pytest.raises(gspread.exceptions.APIError) as refused:
            gspread_client(server.base_url).open_by_key("sheet-leads")
        assert refused.value.code == 401
        authorised = gspread_client(server.base_url, token="sandbox-token")
        assert authorised.open_by_key("sheet-leads").title == "Leads"


def test_google_is_the_default_and_needs_credentials() -> None:
    with pytest.raises(ValueError, match="credentials"):
        gspread_client(None)
    assert (
        rebase_url("https://sheets.googleapis.com/v4/spreadsheets/k?x=1", "http://127.0.0.1:9")
        == "http://127.0.0.1:9/v4/spreadsheets/k?x=1"
    )
    assert (
        rebase_url("https://www.googleapis.com/drive/v3/files", "http://h")
        == "http://h/drive/v3/files"
    )


# The differences from recorded Google traffic issue 22 listed, through gspread where it can
# ask, over plain HTTP otherwise.
CELLS: dict[str, Any] = {
    "sheet-cells": {
        "title": "Cells",
        "worksheets": {
            "Data": [["a", "b", "c"], ["1", "2", "3"], ["4", "5"]],
            "A1": [["in the sheet titled A1"]],  # a title that looks like a cell
        },
    }
}


@pytest.fixture
def cells() -> Iterator[SheetsServer]:
    with SheetsServer(CELLS) as sandbox:
        yield sandbox


def test_one_cell_is_echoed_alone_and_a_reversed_range_is_normalised(
    cells: SheetsServer,
) -> None:
    data = gspread_client(cells.base_url, timeout=5).open_by_key("sheet-cells").sheet1
    one = data.spreadsheet.values_get("Data!B2")
    assert one == {"range": "Data!B2", "majorDimension": "ROWS", "values": [["2"]]}
    reversed_range = data.spreadsheet.values_get("Data!B3:A1")
    assert reversed_range["range"] == "Data!A1:B3"
    assert reversed_range["values"] == [["a", "b"], ["1", "2"], ["4", "5"]]


def test_a_title_that_looks_like_a_cell_is_quoted_and_unquoted_means_cells(
    cells: SheetsServer,
) -> None:
    spreadsheet = gspread_client(cells.base_url, timeout=5).open_by_key("sheet-cells")
    titled = spreadsheet.worksheet("A1").get_all_values()  # gspread quotes the title
    assert titled == [["in the sheet titled A1"]]
    base = cells.base_url + "/v4/spreadsheets/sheet-cells/values/"
    quoted = httpx.get(base + "%27A1%27").json()
    assert quoted["range"].startswith("'A1'!A1:")
    unquoted = httpx.get(base + "A1").json()  # cell A1 of the first sheet
    assert unquoted == {"range": "Data!A1", "majorDimension": "ROWS", "values": [["a"]]}


def test_major_dimension_columns_transposes(cells: SheetsServer) -> None:
    data = gspread_client(cells.base_url, timeout=5).open_by_key("sheet-cells").sheet1
    columns = data.get("A1:C3", major_dimension="COLUMNS")
    assert columns == [["a", "1", "4"], ["b", "2", "5"], ["c", "3"]]
    assert data.get("A1:C3") == [["a", "b", "c"], ["1", "2", "3"], ["4", "5"]]


def test_batch_get_answers_each_range_in_order(cells: SheetsServer) -> None:
    data = gspread_client(cells.base_url, timeout=5).open_by_key("sheet-cells").sheet1
    found = data.batch_get(["A1:B1", "C2"])
    assert [list(rows) for rows in found] == [[["a", "b"]], [["3"]]]
    assert [rows.range for rows in found] == ["Data!A1:B1", "Data!C2"]


def test_what_the_sandbox_cannot_render_is_refused_not_answered_wrongly(
    cells: SheetsServer,
) -> None:
    data = gspread_client(cells.base_url, timeout=5).open_by_key("sheet-cells").sheet1
    with pytest.raises(gspread.exceptions.APIError, match="not emulated"):
        data.get("A1:B2", value_render_option="UNFORMATTED_VALUE")
    with pytest.raises(gspread.exceptions.APIError, match="major_dimension"):
        data.get("A1:B2", major_dimension="DIAGONAL")
