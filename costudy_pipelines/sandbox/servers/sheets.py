"""Google Sheets API v4: the endpoints gspread 6 calls to read a sheet, and `values:batchGet`.

`open_by_key(K)`, `.sheet1` and `.worksheet(title)` each GET `/v4/spreadsheets/K?includeGridData=
false` (metadata); `get_all_values()`/`get_all_records()` GET `/v4/spreadsheets/K/values/'Title'`
(see shared/reference/google-sheets); `batch_get()` GETs `/v4/spreadsheets/K/values:batchGet
?ranges=...` (`{"spreadsheetId", "valueRanges": [...]}`). Values come back as Google returns
them: strings, rows ragged (trailing empty cells and rows trimmed), `range` the sheet's whole
grid for a sheet, the cell alone for one cell (`Sheet1!B2`, not `B2:B2`), a reversed range
(`B2:A1`) read as its normalised one, a title that looks like a cell (`A1`, `R1C1`) quoted,
and an unquoted range that looks like a cell read as cells of the first sheet even when a
sheet has that title, as Google reads it. `majorDimension=COLUMNS` transposes. What is not
emulated: `valueRenderOption` other than FORMATTED_VALUE and `dateTimeRenderOption` (the
sandbox holds each cell's formatted text only, which is what the client reads: it asks for
neither) are refused with a 400, so a client that starts relying on them fails loudly here.
Errors use Google's {"error": {"code", "message", "status"}} shape, which gspread's APIError
reads. A spreadsheet can exist without being shared with the caller: Google then answers 403
PERMISSION_DENIED, the commonest real failure.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from costudy_pipelines.sandbox.servers.base import (
    Headers,
    SandboxServer,
    expected_authorization,
    json_response,
    read_json,
)
from costudy_pipelines.sandbox.servers.faults import FaultPlan, LimitState, RateLimit
from costudy_pipelines.sandbox.servers.records import dump_json

# {spreadsheet id: {"title": str, "worksheets": {worksheet title: rows, header first},
#                   "time_zone": IANA name (optional; a new spreadsheet's default is Etc/GMT)}}
Spreadsheets = Mapping[str, Mapping[str, Any]]
SpreadsheetSource = Spreadsheets | Callable[[], Spreadsheets]
DEFAULT_ROWS, DEFAULT_COLUMNS = 1000, 26  # a new Google sheet's grid
DEFAULT_TIME_ZONE = "Etc/GMT"
_A1 = re.compile(r"^([A-Za-z]*)(\d*)(?::([A-Za-z]*)(\d*))?$")
_PLAIN_TITLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# what Google would read as cells rather than a sheet title: A1 notation or R1C1
_CELL_LIKE = re.compile(r"^(?:[A-Za-z]{1,3}\d+|[Rr]\d*[Cc]\d*)$")
MAJOR_DIMENSIONS = ("ROWS", "COLUMNS")
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def google_error(code: int, message: str) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "status": _GOOGLE_STATUS.get(code, "UNKNOWN")}
    }


class SheetsRequestError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def response(self) -> Response:
        return json_response(self.code, google_error(self.code, self.message))


@dataclass(frozen=True)
class Worksheet:
    sheet_id: int
    title: str
    index: int
    rows: list[list[str]]  # trimmed as Google returns them
    row_json: list[bytes]  # each row serialised once (whole-sheet reads are the common case)
    row_count: int
    column_count: int

    @classmethod
    def build(cls, title: str, index: int, raw_rows: Sequence[Sequence[object]]) -> Worksheet:
        rows = _trim_rows(raw_rows)
        width = max((len(row) for row in rows), default=0)
        # The first sheet of a new spreadsheet has id 0; others get a stable id of their own.
        sheet_id = 0 if index == 0 else zlib.crc32(title.encode()) & 0x7FFFFFFF
        return cls(
            sheet_id,
            title,
            index,
            rows,
            [dump_json(row) for row in rows],
            max(DEFAULT_ROWS, len(rows)),
            max(DEFAULT_COLUMNS, width),
        )

    def properties(self) -> dict[str, Any]:
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": self.index,
            "sheetType": "GRID",
            "gridProperties": {"rowCount": self.row_count, "columnCount": self.column_count},
        }


@dataclass(frozen=True)
class Spreadsheet:
    spreadsheet_id: str
    title: str
    worksheets: tuple[Worksheet, ...]
    time_zone: str = DEFAULT_TIME_ZONE

    @classmethod
    def build(cls, spreadsheet_id: str, data: Mapping[str, Any]) -> Spreadsheet:
        title = data.get("title")
        worksheets = data.get("worksheets")
        if not isinstance(title, str) or not isinstance(worksheets, Mapping) or not worksheets:
            raise ValueError(
                f"spreadsheet {spreadsheet_id!r}: expected {{'title': str, 'worksheets': "
                "{title: rows}}} with at least one worksheet"
            )
        sheets = tuple(
            Worksheet.build(name, index, rows)
            for index, (name, rows) in enumerate(worksheets.items())
        )
        time_zone = data.get("time_zone", DEFAULT_TIME_ZONE)
        if not isinstance(time_zone, str) or not time_zone:
            raise ValueError(f"spreadsheet {spreadsheet_id!r}: time_zone must be an IANA name")
        return cls(spreadsheet_id, title, sheets, time_zone)

    def metadata(self) -> dict[str, Any]:
        return {
            "spreadsheetId": self.spreadsheet_id,
            "properties": {
                "title": self.title,
                "locale": "en_US",
                "autoRecalc": "ON_CHANGE",
                "timeZone": self.time_zone,
            },
            "sheets": [{"properties": sheet.properties()} for sheet in self.worksheets],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit",
        }

    def worksheet(self, title: str) -> Worksheet | None:
        return next((sheet for sheet in self.worksheets if sheet.title == title), None)


class SheetsServer(SandboxServer):
    """Several spreadsheets, each with one or more worksheets. With `token` set, requests must
    carry `Authorization: Bearer <token>`; without it any caller is let in (gspread pointed at
    the sandbox needs no Google credentials)."""

    system = "sheets"
    # "Read requests per minute per user per project: 60."
    documented_rate_limit = RateLimit(max_requests=60, window_seconds=60.0)

    def __init__(
        self,
        spreadsheets: SpreadsheetSource | None = None,
        *,
        token: str | None = None,
        not_shared: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
    ) -> None:
        self._authorization = (
            None if token is None else expected_authorization(token, "SheetsServer")
        )
        self._lock = threading.Lock()
        self._spreadsheets: dict[str, Spreadsheet] = {}
        self._not_shared = set(not_shared)
        self._source: Callable[[], Spreadsheets] | None = None
        if spreadsheets is not None:
            self.replace(spreadsheets)
        super().__init__(host=host, port=port, faults=faults)

    # ------------------------------------------------------------------ data, from Python
    def replace(self, spreadsheets: SpreadsheetSource) -> None:
        """Serve exactly these spreadsheets. A callable is kept and read again by refresh()."""
        if callable(spreadsheets):
            self._source = spreadsheets
            spreadsheets = spreadsheets()
        built = {key: Spreadsheet.build(key, data) for key, data in spreadsheets.items()}
        with self._lock:
            self._spreadsheets = built

    def set_spreadsheet(
        self, spreadsheet_id: str, title: str | None, worksheets: Mapping[str, Any] | None
    ) -> None:
        """Add or replace one spreadsheet (ValueError naming it when title or worksheets is
        missing or malformed)."""
        built = Spreadsheet.build(spreadsheet_id, {"title": title, "worksheets": worksheets})
        with self._lock:
            self._spreadsheets = {**self._spreadsheets, spreadsheet_id: built}

    def delete_spreadsheet(self, spreadsheet_id: str) -> bool:
        with self._lock:
            remaining = dict(self._spreadsheets)
            found = remaining.pop(spreadsheet_id, None) is not None
            self._spreadsheets = remaining
        return found

    def set_shared(self, spreadsheet_id: str, shared: bool) -> None:
        """Share a spreadsheet with the caller, or take the share away (403 from then on)."""
        with self._lock:
            if shared:
                self._not_shared.discard(spreadsheet_id)
            else:
                self._not_shared.add(spreadsheet_id)

    def refresh(self) -> None:
        if self._source is not None:
            self.replace(self._source)

    def spreadsheet_ids(self) -> list[str]:
        return list(self._spreadsheets)

    # ------------------------------------------------------------ system error shapes
    def authorize(self, method: str, path: str, headers: dict[str, str]) -> Response | None:
        if self._authorization is None or headers.get("authorization") == self._authorization:
            return None
        message = (
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential."
        )
        return json_response(401, google_error(401, message))

    def error_body(self, status: int, path: str) -> object:
        return google_error(status, "Internal error encountered.")

    def rate_limited_body(self, state: LimitState, path: str) -> object:
        message = (
            "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per "
            "minute per user' of service 'sheets.googleapis.com'."
        )
        return google_error(429, message)

    def rate_limited_headers(self, state: LimitState) -> Headers:
        """Google's quota 429s carry no Retry-After: the client must know the quota window."""
        return []

    # -------------------------------------------------------------------- endpoints
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v4/spreadsheets/{spreadsheet_id}", self._metadata, methods=["GET"]),
            Route(
                "/v4/spreadsheets/{spreadsheet_id}/values:batchGet",
                self._batch_get,
                methods=["GET"],
            ),
            Route(
                "/v4/spreadsheets/{spreadsheet_id}/values/{range:path}",
                self._values,
                methods=["GET"],
            ),
        ]

    def admin_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/data", self._data_counts, methods=["GET"]),
            Route(
                "/_sandbox/data/{spreadsheet_id}", self._data_endpoint, methods=["PUT", "DELETE"]
            ),
        ]

    async def _metadata(self, request: Request) -> Response:
        if request.query_params.get("includeGridData", "false").lower() == "true":
            return json_response(400, google_error(400, "includeGridData is not emulated"))
        try:
            spreadsheet = self._spreadsheet(request.path_params["spreadsheet_id"])
        except SheetsRequestError as exc:
            return exc.response()
        return json_response(200, spreadsheet.metadata())

    async def _values(self, request: Request) -> Response:
        try:
            dimension = _read_options(request)
            spreadsheet = self._spreadsheet(request.path_params["spreadsheet_id"])
            sheet, bounds = _resolve_range(spreadsheet, request.path_params["range"])
        except SheetsRequestError as exc:
            return exc.response()
        return Response(_values_body(sheet, bounds, dimension), media_type="application/json")

    async def _batch_get(self, request: Request) -> Response:
        spreadsheet_id = request.path_params["spreadsheet_id"]
        try:
            dimension = _read_options(request)
            spreadsheet = self._spreadsheet(spreadsheet_id)
            ranges = [
                _resolve_range(spreadsheet, text) for text in request.query_params.getlist("ranges")
            ]
        except SheetsRequestError as exc:
            return exc.response()
        body = b'{"spreadsheetId":' + dump_json(spreadsheet_id) + b',"valueRanges":['
        body += b",".join(_values_body(sheet, bounds, dimension) for sheet, bounds in ranges)
        return Response(body + b"]}", media_type="application/json")

    def _spreadsheet(self, spreadsheet_id: str) -> Spreadsheet:
        spreadsheet = self._spreadsheets.get(spreadsheet_id)
        if spreadsheet is None:
            raise SheetsRequestError(404, "Requested entity was not found.")
        if spreadsheet_id in self._not_shared:
            raise SheetsRequestError(403, "The caller does not have permission")
        return spreadsheet

    async def _data_counts(self, request: Request) -> Response:
        counts = {
            key: {sheet.title: len(sheet.rows) for sheet in spreadsheet.worksheets}
            for key, spreadsheet in self._spreadsheets.items()
        }
        return json_response(200, counts)

    async def _data_endpoint(self, request: Request) -> Response:
        """PUT {"title", "worksheets"} to add or replace a spreadsheet; DELETE to remove it."""
        spreadsheet_id = request.path_params["spreadsheet_id"]
        if request.method == "DELETE":
            found = self.delete_spreadsheet(spreadsheet_id)
            return json_response(200 if found else 404, {"deleted": found})
        try:
            data = await read_json(request)
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object {title, worksheets}")
            self.set_spreadsheet(spreadsheet_id, data.get("title"), data.get("worksheets"))
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(200, {"spreadsheet_id": spreadsheet_id})


# (first row, first column, last row, last column), 1-based and inclusive
Bounds = tuple[int, int, int, int]


def _resolve_range(spreadsheet: Spreadsheet, text: str) -> tuple[Worksheet, Bounds]:
    """A1 notation as Google reads it: 'Title'!A1:B2, Title!A:B, Title, or A1:B2 on the first
    sheet."""
    title, cells = _split_range(text)
    if title is None:
        # Google reads what looks like cells as cells of the first sheet, before any title
        sheet = None if _looks_like_cells(text) else spreadsheet.worksheet(text)
        if sheet is not None:
            return sheet, _whole(sheet)
        title, sheet = spreadsheet.worksheets[0].title, spreadsheet.worksheets[0]
    else:
        sheet = spreadsheet.worksheet(title)
    if sheet is None:
        raise SheetsRequestError(400, f"Unable to parse range: {text}")
    if cells is None:
        return sheet, _whole(sheet)
    match = _A1.match(cells)
    if match is None or not cells:
        raise SheetsRequestError(400, f"Unable to parse range: {text}")
    first_col, first_row, last_col, last_row = match.groups()
    if last_col is None and last_row is None:  # a single cell, which needs both parts
        if not (first_col and first_row):
            raise SheetsRequestError(400, f"Unable to parse range: {text}")
        last_col, last_row = first_col, first_row
    rows = (int(first_row) if first_row else 1, int(last_row) if last_row else sheet.row_count)
    columns = (
        _column_number(first_col) if first_col else 1,
        _column_number(last_col) if last_col else sheet.column_count,
    )
    # a reversed range (B2:A1) is the same cells as its normalised one (A1:B2)
    return sheet, (min(rows), min(columns), max(rows), max(columns))


def _looks_like_cells(text: str) -> bool:
    match = _A1.match(text)
    return bool(text) and match is not None and any(match.groups())


def _read_options(request: Request) -> str:
    """The majorDimension asked for; what the sandbox cannot answer is a 400 (Google's
    wording for an unknown value)."""
    query = request.query_params
    dimension = query.get("majorDimension", "ROWS").upper()
    if dimension not in MAJOR_DIMENSIONS:
        raise SheetsRequestError(
            400, f"Invalid value at 'major_dimension' ({query.get('majorDimension')})"
        )
    render = query.get("valueRenderOption", "FORMATTED_VALUE").upper()
    if render != "FORMATTED_VALUE":
        raise SheetsRequestError(
            400, f"valueRenderOption {render} is not emulated: the sandbox holds formatted values"
        )
    if "dateTimeRenderOption" in query:
        raise SheetsRequestError(400, "dateTimeRenderOption is not emulated")
    return dimension


def _split_range(text: str) -> tuple[str | None, str | None]:
    """('Title', 'A1:B2') for "'Title'!A1:B2", ('Title', None) for "'Title'", (None, cells) for
    an unquoted range (the caller decides whether it names a sheet)."""
    if text.startswith("'"):
        position, title = 1, []
        while position < len(text):
            char = text[position]
            if char == "'" and text[position + 1 : position + 2] == "'":
                title.append("'")
                position += 2
                continue
            if char == "'":
                rest = text[position + 1 :]
                if rest and not rest.startswith("!"):
                    break
                return "".join(title), (rest[1:] if rest else None)
            title.append(char)
            position += 1
        raise SheetsRequestError(400, f"Unable to parse range: {text}")
    if "!" in text:
        title_part, _, cells = text.rpartition("!")
        return title_part, cells
    return None, text


def _whole(sheet: Worksheet) -> Bounds:
    return 1, 1, sheet.row_count, sheet.column_count


def _values_body(sheet: Worksheet, bounds: Bounds, dimension: str = "ROWS") -> bytes:
    first_row, first_col, last_row, last_col = bounds
    last_row, last_col = min(last_row, sheet.row_count), min(last_col, sheet.column_count)
    a1 = f"{_column_letters(first_col)}{first_row}"
    if (first_row, first_col) != (last_row, last_col):  # one cell is echoed alone
        a1 += f":{_column_letters(last_col)}{last_row}"
    head = dump_json({"range": f"{_quoted(sheet.title)}!{a1}", "majorDimension": dimension})[:-1]
    if bounds == _whole(sheet) and dimension == "ROWS":
        rows = sheet.row_json
    else:
        picked = [row[first_col - 1 : last_col] for row in sheet.rows[first_row - 1 : last_row]]
        grid = _trim_rows(picked)
        if dimension == "COLUMNS":
            grid = _trim_rows(_columns(grid))
        rows = [dump_json(row) for row in grid]
    if not rows:
        return head + b"}"
    return head + b',"values":[' + b",".join(rows) + b"]}"


def _columns(rows: list[list[str]]) -> list[list[str]]:
    width = max((len(row) for row in rows), default=0)
    return [[row[n] if n < len(row) else "" for row in rows] for n in range(width)]


def _quoted(title: str) -> str:
    """A sheet title as Google writes it in a range: quoted unless it is a plain word."""
    if _PLAIN_TITLE.match(title) and not _CELL_LIKE.match(title):
        return title
    escaped = title.replace("'", "''")
    return f"'{escaped}'"


def _trim_rows(rows: Sequence[Sequence[object]]) -> list[list[str]]:
    """Google drops trailing empty cells of each row and trailing empty rows."""
    trimmed = []
    for row in rows:
        cells = ["" if cell is None else str(cell) for cell in row]
        while cells and cells[-1] == "":
            cells.pop()
        trimmed.append(cells)
    while trimmed and not trimmed[-1]:
        trimmed.pop()
    return trimmed


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _column_letters(number: int) -> str:
    letters = ""
    while number > 0:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters
