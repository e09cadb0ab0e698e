"""The Sheets reader through real gspread against a minimal Sheets v4 server on 127.0.0.1 and
against the project's Sheets sandbox, reached through the project's own transport
(sheets_transport.gspread_client, as the assets build it for a Sheets API base other than
Google's)."""

from __future__ import annotations

import secrets
from functools import partial
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from costudy_pipelines.lib.clients.http import ApiError, RateLimit, RateLimiter, RetryPolicy
from costudy_pipelines.sandbox.servers import Fault, FaultPlan, SheetsServer
from costudy_pipelines.sandbox.servers import RateLimit as ServerRateLimit
from costudy_pipelines.sources.sheets.client import SheetLayoutError, SheetSource, SheetsReader
from costudy_pipelines.sources.sheets.transport import gspread_client
from costudy_pipelines_tests.lib.clients.live import Recorder, serve

KEY = "1CE41E_Ixiqessy_IQn0O9XfhLDmQKucskRB3evPVbKI"
FAST = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)
TOKEN = secrets.token_urlsafe(16)


def sheets_app(worksheets: dict[str, list[list[str]]], recorder: Recorder, failures: list[Any]):
    """Metadata and values endpoints as gspread 6 calls them; a request without the token is
    refused, and `failures` are served first."""

    def refusal(request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            error = {"error": {"code": 401, "message": "no token", "status": "UNAUTHENTICATED"}}
            return JSONResponse(error, status_code=401)
        if failures:
            status, headers = failures.pop(0)
            error = {"error": {"code": status, "message": "quota", "status": "X"}}
            return JSONResponse(error, status_code=status, headers=headers)
        return None

    async def metadata(request: Request) -> Response:
        await recorder.record(request)
        if failed := refusal(request):
            return failed
        sheets = [
            {"properties": {"sheetId": i, "title": title, "index": i, "sheetType": "GRID"}}
            for i, title in enumerate(worksheets)
        ]
        body = {"spreadsheetId": KEY, "properties": {"title": "Payments"}, "sheets": sheets}
        return JSONResponse(body)

    async def values(request: Request) -> Response:
        await recorder.record(request)
        if failed := refusal(request):
            return failed
        title = request.path_params["range"].strip("'")
        rows = worksheets[title]
        body: dict[str, Any] = {"range": f"{title}!A1:Z{len(rows)}", "majorDimension": "ROWS"}
        if rows:
            body["values"] = rows
        return JSONResponse(body)

    return Starlette(
        routes=[
            Route("/v4/spreadsheets/{key}", metadata),
            Route("/v4/spreadsheets/{key}/values/{range:path}", values),
        ]
    )


def read(worksheets: dict[str, list[list[str]]], source: SheetSource, failures=(), **options):
    recorder = Recorder()
    with serve(sheets_app(worksheets, recorder, list(failures))) as url:
        reader = SheetsReader(
            partial(gspread_client, url, token=TOKEN),
            retry=FAST,
            rate_limiter=RateLimiter(RateLimit(requests=1000, per_seconds=1.0)),
            **options,
        )
        chunks = list(reader.rows(source))
    return chunks, reader.counters, recorder


PAYMENTS = [
    ["Email", "Name", "Amount", "Date"],
    ["Zoë@Example.com ", "Zoë Ünal", "10.50", "2025-03-02"],
    ["bob@example.com", "Bob; DROP TABLE users"],  # ragged: trailing cells trimmed by Sheets
    [],  # a blank row inside the data
    ["", "", "", ""],
    ["carol@example.com", "Carol", "7", "2025-03-03"],
]


def test_rows_are_dicts_keyed_by_header_with_row_numbers_in_chunks() -> None:
    source = SheetSource(KEY, "Sheet One")
    chunks, counters, recorder = read({"Sheet One": PAYMENTS}, source, chunk_size=2)
    assert [len(chunk) for chunk in chunks] == [2, 1]
    rows = [row for chunk in chunks for row in chunk]
    assert rows[0] == {
        "_spreadsheet": KEY,
        "_worksheet": "Sheet One",
        "_row": 2,
        "Email": "Zoë@Example.com ",
        "Name": "Zoë Ünal",
        "Amount": "10.50",
        "Date": "2025-03-02",
    }
    assert rows[1]["Name"] == "Bob; DROP TABLE users" and rows[1]["Amount"] == ""
    assert [row["_row"] for row in rows] == [2, 3, 6]
    assert counters.requests == 3
    assert recorder.hits[-1].path == "/v4/spreadsheets/" + KEY + "/values/'Sheet One'"


def test_header_row_below_a_title_row() -> None:
    titled = [["Payments export"], *PAYMENTS]
    chunks, _, _ = read({"Data": titled}, SheetSource(KEY, "Data", header_row=2))
    rows = chunks[0]
    assert rows[0]["Email"] == "Zoë@Example.com " and rows[0]["_row"] == 3


def test_duplicate_headers_are_a_clear_error_naming_the_sheet() -> None:
    sheet = [["Email", "Name", "Email"], ["a@b.co", "A", "x"]]
    with pytest.raises(
        SheetLayoutError, match=r"worksheet 'Dup'.*'Email' appears twice \(A1 and C1\)"
    ):
        read({"Dup": sheet}, SheetSource(KEY, "Dup"))


def test_a_blank_header_is_an_error_only_when_its_column_holds_data() -> None:
    empty_column = [["Email", "", "Name"], ["a@b.co", "", "A"]]
    chunks, _, _ = read({"S": empty_column}, SheetSource(KEY, "S"))
    assert set(chunks[0][0]) == {"_spreadsheet", "_worksheet", "_row", "Email", "Name"}
    lost_column = [["Email", "Name"], ["a@b.co", "A"], ["b@b.co", "B", "note"]]
    with pytest.raises(SheetLayoutError, match=r"header cell C1 is blank .*first at C3"):
        read({"S": lost_column}, SheetSource(KEY, "S"))


def test_an_empty_worksheet_has_no_header_and_says_so() -> None:
    with pytest.raises(SheetLayoutError, match="header row 1 is empty"):
        read({"Empty": []}, SheetSource(KEY, "Empty"))


def test_quota_errors_are_retried_honouring_retry_after() -> None:
    failures = [(429, {"Retry-After": "0.2"}), (503, {})]
    chunks, counters, recorder = read({"S": PAYMENTS}, SheetSource(KEY, "S"), failures)
    assert len(chunks[0]) == 3
    assert (counters.rate_limited, counters.server_errors, counters.retries) == (1, 1, 2)
    assert recorder.hits[1].at - recorder.hits[0].at >= 0.19


def test_persistent_server_errors_end_in_an_error_naming_the_worksheet() -> None:
    failures = [(500, {})] * 5
    with pytest.raises(
        ApiError, match=r"Google Sheets worksheet 'S' of spreadsheet .*HTTP 500 after 3"
    ):
        read({"S": PAYMENTS}, SheetSource(KEY, "S"), failures)


def test_a_missing_worksheet_is_named() -> None:
    with pytest.raises(ApiError, match=r"worksheet 'Nope'.*no worksheet with that title"):
        read({"S": PAYMENTS}, SheetSource(KEY, "Nope"))


SERVICE_ACCOUNT = "costudy-reader@costudy-prod.iam.gserviceaccount.com"
SHARED = {"title": "Payments", "worksheets": {"Sheet One": PAYMENTS}}


def sandbox_reader(server: SheetsServer, **options: Any) -> SheetsReader:
    """A reader of the project's Sheets sandbox, its own rate limiter out of the way."""
    options.setdefault("rate_limiter", RateLimiter(RateLimit(requests=1000, per_seconds=1.0)))
    return SheetsReader(partial(gspread_client, server.base_url), retry=FAST, **options)


def test_a_spreadsheet_not_shared_names_the_sheet_and_the_account_to_share_it_with() -> None:
    source = SheetSource(KEY, "Sheet One")
    with SheetsServer({KEY: SHARED}, not_shared=[KEY]) as server:
        reader = sandbox_reader(server, service_account=SERVICE_ACCOUNT)
        with pytest.raises(ApiError) as raised:
            list(reader.rows(source))
        assert raised.value.status == 403
        message = str(raised.value)
        for part in (f"worksheet 'Sheet One' of spreadsheet {KEY}", "HTTP 403", SERVICE_ACCOUNT):
            assert part in message, message
        assert "share it with that address" in message
        assert reader.counters.requests == 1  # a 403 is not retried: sharing takes a person

        server.set_shared(KEY, True)
        assert len(next(sandbox_reader(server).rows(source))) == 3


def test_without_an_account_the_message_says_where_to_find_it() -> None:
    with (
        SheetsServer({KEY: SHARED}, not_shared=[KEY]) as server,
        pytest.raises(ApiError, match="client_email in GOOGLE_SERVICE_ACCOUNT_FILE"),
    ):
        list(sandbox_reader(server).rows(SheetSource(KEY, "Sheet One")))


def test_a_429_without_retry_after_waits_out_the_quota_window() -> None:
    """Google's quota 429 has no hint; the reader waits a whole quota window before retrying.
    The server's own window is the same length, so it admits the retry only if the reader
    really waited that long: one 429, then success."""
    window = 0.5
    plan = FaultPlan(rate_limit=ServerRateLimit(max_requests=2, window_seconds=window))
    with SheetsServer({KEY: SHARED}, faults=plan) as server:
        reader = sandbox_reader(server, quota_window_s=window)
        rows = [row for chunk in reader.rows(SheetSource(KEY, "Sheet One")) for row in chunk]
        statuses = [entry.status for entry in server.request_log]
    assert len(rows) == 3
    assert statuses == [200, 200, 429, 200]
    assert (reader.counters.rate_limited, reader.counters.retries) == (1, 1)
    assert reader.counters.waited_s >= window  # the schedule computed: at least one window


def test_hint_less_429s_beyond_the_budget_say_the_wait_was_the_quota_window() -> None:
    plan = FaultPlan(faults=[Fault("error", status=429)])  # every request: quota exhausted
    with SheetsServer({KEY: SHARED}, faults=plan) as server:
        reader = sandbox_reader(server, quota_window_s=0.05)
        with pytest.raises(ApiError, match=r"HTTP 429 after 3 attempt\(s\)") as raised:
            list(reader.rows(SheetSource(KEY, "Sheet One")))
    assert "the per-minute quota window says to wait 0.1 s" in str(raised.value)
    assert "Quota exceeded" in str(raised.value)  # Google's own message, from its error body
    assert reader.counters.rate_limited == 3
