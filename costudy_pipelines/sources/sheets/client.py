"""Google Sheets: rows of configured worksheets through a ready gspread client.

Each worksheet costs three requests (spreadsheet metadata, worksheet lookup, and one
`get_all_values`), whatever its size. Rows come back as dicts keyed by the header row's
cells, with the cell text exactly as the sheet shows it (gspread's default FORMATTED_VALUE;
no numericising: validation decides what a value means), plus where they came from:
`_spreadsheet`, `_worksheet` and `_row` (the 1-based sheet row number).

Retries: gspread only retries with its opt-in BackOffHTTPClient, and the client here is made
elsewhere (see `sheets_transport`), so every request is wrapped in the same retry loop,
budget and counters as the HTTP clients: 429/5xx, timeouts and dropped connections are
retried; other API errors fail at once with a clear message. Google's quota 429s carry no
Retry-After and the quota is counted per minute, so a 429 without a hint waits out a whole
quota window (`quota_window_s`, 60 s) and pauses every reader sharing the limiter for as long:
retrying sooner only spends attempts inside the same window.

A spreadsheet not shared with the service account answers 403 (gspread raises a bare
PermissionError) or 404: the error names the spreadsheet, the worksheet and the address to
share it with (`service_account`, else the client's service-account credentials).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:  # gspread imports google-auth and requests: ~0.2 s, paid by a sheets sync only
    import gspread

from costudy_pipelines.lib.clients.base import Page, Record, chunked
from costudy_pipelines.lib.clients.http import (
    ApiCounters,
    ApiError,
    AttemptFailure,
    MalformedResponseError,
    RateLimit,
    RateLimiter,
    RetryBudget,
    RetryPolicy,
    Timeouts,
    retry_loop,
    shared_rate_limiter,
    status_failure,
)

API_NAME = "Google Sheets"
# Google's documented default quota: 60 read requests per minute per user.
SHEETS_RATE_LIMIT = RateLimit(requests=60, per_seconds=60.0, burst=10)
QUOTA_WINDOW_S = 60.0  # the quota is per minute: a hint-less 429 lasts until the minute is out
PROVENANCE_KEYS = ("_spreadsheet", "_worksheet", "_row")
EXCERPT_CHARS = 300


class SheetLayoutError(ValueError):
    """A worksheet whose header cannot key its rows (duplicate, blank or reserved names)."""


@dataclass(frozen=True)
class SheetSource:
    """One configured worksheet: which spreadsheet, which tab, and where its header is."""

    spreadsheet_key: str
    worksheet: str
    header_row: int = 1

    def __post_init__(self) -> None:
        if self.header_row < 1:
            raise ValueError(f"{self}: header_row must be 1 or more, not {self.header_row}")

    def __str__(self) -> str:
        return f"worksheet {self.worksheet!r} of spreadsheet {self.spreadsheet_key}"


ClientSource: TypeAlias = "gspread.Client | Callable[[], gspread.Client]"


@dataclass(frozen=True)
class SheetValues:
    """One worksheet as read: its cells, and the time zone its dates are written in (the
    spreadsheet's `timeZone` setting, an IANA name)."""

    source: SheetSource
    values: list[list[str]]
    time_zone: str

    def pages(self, chunk_size: int) -> Iterator[Page]:
        """The data rows below the header, in chunks of at most `chunk_size`."""
        return chunked(records_from_values(self.source, self.values), chunk_size)


@dataclass
class SheetsReader:
    """Reads configured worksheets in chunks of dict rows; `counters` for asset metadata."""

    client: ClientSource
    chunk_size: int = 1000
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limiter: RateLimiter = field(
        default_factory=lambda: shared_rate_limiter(API_NAME, SHEETS_RATE_LIMIT)
    )
    counters: ApiCounters = field(default_factory=ApiCounters)
    quota_window_s: float = QUOTA_WINDOW_S
    service_account: str | None = None

    def __post_init__(self) -> None:
        self._client: gspread.Client | None = None

    def rows(self, source: SheetSource) -> Iterator[Page]:
        """The data rows below `source`'s header, in chunks of at most `chunk_size`."""
        yield from self.read(source).pages(self.chunk_size)

    def values(self, source: SheetSource) -> list[list[str]]:
        """The worksheet as gspread returns it: a list of rows, each a list of cell strings."""
        return self.read(source).values

    def read(self, source: SheetSource) -> SheetValues:
        """The worksheet's values and its spreadsheet's time zone (from the metadata)."""
        client = self._gspread()
        spreadsheet = self._call(source, lambda: client.open_by_key(source.spreadsheet_key))
        worksheet = self._call(source, lambda: spreadsheet.worksheet(source.worksheet))
        values = self._call(source, worksheet.get_all_values)
        try:
            time_zone = spreadsheet.timezone
        except KeyError:  # metadata without a timeZone (Google always sends one)
            time_zone = "UTC"
        return SheetValues(source, values, time_zone)

    def _gspread(self) -> gspread.Client:
        import gspread

        if self._client is None:
            client = self.client if isinstance(self.client, gspread.Client) else self.client()
            client.set_timeout((self.timeouts.connect_s, self.timeouts.read_s))
            self._client = client
            if self.service_account is None:
                credentials = getattr(client.http_client, "auth", None)
                self.service_account = getattr(credentials, "service_account_email", None)
        return self._client

    def _call(self, source: SheetSource, request: Callable[[], Any]) -> Any:
        """One gspread request, retried like every other API call."""

        def attempt() -> Any:
            self.counters.waited_s += self.rate_limiter.acquire()
            self.counters.requests += 1
            try:
                return request()
            except Exception as exc:
                return self._retryable(source, exc)

        def give_up(failure: AttemptFailure, budget: RetryBudget) -> ApiError:
            kind = MalformedResponseError if failure.malformed else ApiError
            return sheet_error(source, failure.summary(budget), failure.status, kind)

        return retry_loop(attempt, self.retry, self.counters, give_up)

    def _retryable(self, source: SheetSource, exc: Exception) -> AttemptFailure:
        """The failure to retry, or raise at once when retrying cannot help."""
        import gspread
        import requests

        cause = exc.__cause__
        if isinstance(exc, PermissionError) and isinstance(cause, gspread.exceptions.APIError):
            exc = cause  # open_by_key's bare PermissionError for a 403
        if isinstance(exc, gspread.exceptions.APIError):
            status = exc.response.status_code
            message = " ".join(str(exc.error.get("message", ""))[:EXCERPT_CHARS].split())
            if status == 403:
                what = f"HTTP 403 ({message}): {self._share_hint()}"
                raise sheet_error(source, what, status) from None
            failure = status_failure(status, exc.response.headers, self.counters)
            if failure is None:
                raise sheet_error(source, f"HTTP {status}: {message}", status) from None
            failure.body = message
            if status == 429 and failure.retry_after is None:
                # Google sends no hint: the quota frees up when its window has passed
                failure.retry_after = self.quota_window_s
                failure.wait_from = "no hint: the per-minute quota window says"
                self.rate_limiter.pause_for(self.quota_window_s)
            return failure
        if isinstance(exc, gspread.exceptions.SpreadsheetNotFound):
            what = f"the spreadsheet does not exist or {self._share_hint()}"
            raise sheet_error(source, what, 404) from None
        if isinstance(exc, gspread.exceptions.WorksheetNotFound):
            raise sheet_error(source, "the spreadsheet has no worksheet with that title", 404)
        if isinstance(exc, requests.exceptions.Timeout):
            self.counters.timeouts += 1
            return AttemptFailure(f"timed out ({type(exc).__name__})")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return AttemptFailure(f"connection failed ({type(exc).__name__})")
        if isinstance(exc, ValueError):  # requests' JSONDecodeError: not JSON
            self.counters.malformed += 1
            return AttemptFailure("invalid JSON", malformed=True)
        raise exc

    def _share_hint(self) -> str:
        account = self.service_account or (
            "the pipelines' service account (client_email in GOOGLE_SERVICE_ACCOUNT_FILE)"
        )
        return f"it is not shared with {account}: share it with that address (Viewer is enough)"


def sheet_error(
    source: SheetSource, what: str, status: int | None, kind: type[ApiError] = ApiError
) -> ApiError:
    return kind(
        f"{API_NAME} {source}: {what}",
        api=API_NAME,
        method="GET",
        path=source.spreadsheet_key,
        status=status,
    )


def records_from_values(source: SheetSource, values: list[list[str]]) -> Iterator[Record]:
    """Dict rows from a worksheet's values; entirely blank rows are skipped.

    Short (ragged) rows get "" for their missing cells, as Sheets shows them. A header that
    cannot key the rows is a SheetLayoutError naming the worksheet and the cells.
    """
    header = values[source.header_row - 1] if len(values) >= source.header_row else []
    if not any(str(cell).strip() for cell in header):
        raise SheetLayoutError(
            f"{source}: header row {source.header_row} is empty (the worksheet has "
            f"{len(values)} row(s) of values)"
        )
    data = values[source.header_row :]
    columns = header_columns(source, header, data)
    for row_number, row in enumerate(data, start=source.header_row + 1):
        if not any(str(cell).strip() for cell in row):
            continue
        record: Record = {
            "_spreadsheet": source.spreadsheet_key,
            "_worksheet": source.worksheet,
            "_row": row_number,
        }
        for index, name in columns:
            record[name] = row[index] if index < len(row) else ""
        yield record


def header_columns(
    source: SheetSource, header: list[str], data: list[list[str]]
) -> list[tuple[int, str]]:
    """(column index, name) for every named column; raises on names that cannot key a dict.

    A column with a blank header is ignored when it is empty all the way down (stray
    formatting), and an error when it holds data, which would otherwise be lost.
    """
    from gspread.utils import rowcol_to_a1

    width = max([len(header), *(len(row) for row in data)])
    columns: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for index in range(width):
        name = str(header[index]).strip() if index < len(header) else ""
        cell = rowcol_to_a1(source.header_row, index + 1)
        if not name:
            _check_blank_column(source, cell, index, data)
            continue
        if name in seen:
            first = rowcol_to_a1(source.header_row, seen[name] + 1)
            raise SheetLayoutError(f"{source}: header {name!r} appears twice ({first} and {cell})")
        if name in PROVENANCE_KEYS:
            raise SheetLayoutError(f"{source}: header {cell} is {name!r}, a reserved name")
        seen[name] = index
        columns.append((index, name))
    return columns


def _check_blank_column(source: SheetSource, cell: str, index: int, data: list[list[str]]) -> None:
    from gspread.utils import rowcol_to_a1

    for row_number, row in enumerate(data, start=source.header_row + 1):
        if index < len(row) and str(row[index]).strip():
            raise SheetLayoutError(
                f"{source}: header cell {cell} is blank but the column holds data "
                f"(first at {rowcol_to_a1(row_number, index + 1)}); name the column"
            )
