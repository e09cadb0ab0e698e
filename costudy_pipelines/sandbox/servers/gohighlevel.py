"""GoHighLevel (LeadConnector API v2) contacts: `GET /contacts/` and `POST /contacts/search`.

Shapes follow shared/reference/gohighlevel (contacts OpenAPI). Errors use the NestJS shape the
API answers with ({"statusCode", "message"}); a missing Version header is a 401 "version header
was not found." as the live API answers. Contacts are ordered by (dateAdded in ms, id), the pair
the startAfter/startAfterId and searchAfter cursors carry. Search emulates the one filter the
product sends, a `dateAdded` range (gte/gt/lte/lt, ISO-8601): its pages and its `total` are
the range's contacts only, as the live API answers; other filters and `sort` are ignored (the
order is always ascending).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from costudy_pipelines.sandbox.servers.base import (
    Headers,
    expected_authorization,
    json_response,
    read_json,
)
from costudy_pipelines.sandbox.servers.faults import FaultPlan, LimitState, RateLimit
from costudy_pipelines.sandbox.servers.paging import parse_count, parse_moment
from costudy_pipelines.sandbox.servers.record_server import RecordServer
from costudy_pipelines.sandbox.servers.records import (
    Key,
    RecordCollection,
    RecordSource,
    dump_json,
)

API_VERSIONS = ("2021-07-28", "2021-04-15")
LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT = 20, 100
SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT = 20, 500
SEARCH_PAGE_WINDOW = 10_000  # page/pageLimit reach this many results; searchAfter goes beyond


class RequestError(ValueError):
    def __init__(self, status: int, message: str | list[str]) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class GoHighLevelServer(RecordServer):
    """Contacts of one or more locations. `location_ids` are the locations the token may read
    (None: any location asked for); contacts are partitioned by their `locationId`."""

    system = "gohighlevel"
    # Burst 100 requests / 10 s and 200,000 / day per app per location.
    documented_rate_limit = RateLimit(max_requests=100, window_seconds=10.0, daily_max=200_000)

    def __init__(
        self,
        *,
        token: str,
        contacts: RecordSource | None = None,
        location_ids: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
    ) -> None:
        self._authorization = expected_authorization(token, "GoHighLevelServer")
        self.location_ids = None if location_ids is None else frozenset(location_ids)
        contacts_collection = RecordCollection(
            "contacts", time_field="dateAdded", partition_field="locationId", time_unit_us=1000
        )
        super().__init__(
            [contacts_collection], {"contacts": contacts}, host=host, port=port, faults=faults
        )

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/contacts/", self._list_contacts, methods=["GET"]),
            Route("/contacts/search", self._search_contacts, methods=["POST"]),
        ]

    # ------------------------------------------------------------ system error shapes
    def authorize(self, method: str, path: str, headers: dict[str, str]) -> Response | None:
        version = headers.get("version")
        if not version:
            return _error(401, "version header was not found.")
        if version not in API_VERSIONS:
            return _error(401, "version header is invalid")
        if headers.get("authorization") != self._authorization:
            return _error(401, "Invalid JWT")
        return None

    def error_body(self, status: int, path: str) -> object:
        return {"statusCode": status, "message": "Internal server error"}

    def rate_limited_body(self, state: LimitState, path: str) -> object:
        return {"statusCode": 429, "message": "Too Many Requests"}

    def rate_limit_headers(self, state: LimitState) -> Headers:
        limit = state.limit
        headers = [
            (b"x-ratelimit-max", str(limit.max_requests).encode()),
            (b"x-ratelimit-remaining", str(state.remaining).encode()),
            (b"x-ratelimit-interval-milliseconds", str(int(limit.window_seconds * 1000)).encode()),
        ]
        if limit.daily_max is not None and state.daily_remaining is not None:
            headers += [
                (b"x-ratelimit-limit-daily", str(limit.daily_max).encode()),
                (b"x-ratelimit-daily-remaining", str(state.daily_remaining).encode()),
            ]
        return headers

    # -------------------------------------------------------------------- endpoints
    async def _list_contacts(self, request: Request) -> Response:
        """The deprecated, still live list: startAfter (ms) + startAfterId, limit <= 100."""
        query = request.query_params
        try:
            location = self._location(query.get("locationId"))
            limit = parse_count(
                "limit", query.get("limit"), default=LIST_DEFAULT_LIMIT, maximum=LIST_MAX_LIMIT
            )
            after = _cursor(query.get("startAfter"), query.get("startAfterId"))
        except RequestError as exc:
            return _error(exc.status, exc.message)
        except ValueError as exc:
            return _error(422, [str(exc)])
        index = self.collections["contacts"].index(location)
        start = 0 if after is None else index.after(after)
        stop = min(len(index), start + (limit or LIST_DEFAULT_LIMIT))
        more = stop < len(index)
        page_size = limit or LIST_DEFAULT_LIMIT
        current = start // page_size + 1
        last: Key | None = index.keys[stop - 1] if stop > start else None
        next_url = None
        if more and last is not None:
            params = {"locationId": location, "startAfter": last[0], "startAfterId": last[1]}
            next_url = f"{self.base_url}/contacts/?{urlencode({**params, 'limit': page_size})}"
        meta = {
            "total": len(index),
            "nextPageUrl": next_url,
            "startAfterId": last[1] if last else None,
            "startAfter": last[0] if last else None,
            "currentPage": current,
            "nextPage": current + 1 if more else None,
            "prevPage": current - 1 if current > 1 else None,
        }
        # "count" is the location's total, as meta.total (the OpenAPI example leaves it open).
        head = b'{"contacts":[' + index.joined(start, stop) + b"],"
        tail = b'"count":%d,"meta":%s}' % (len(index), dump_json(meta))
        return Response(head + tail, media_type="application/json")

    async def _search_contacts(self, request: Request) -> Response:
        """page/pageLimit (<= 500, up to 10,000 results) or the searchAfter [ms, id] cursor that
        every returned contact carries."""
        try:
            body = await read_json(request)
            if not isinstance(body, dict):
                raise RequestError(422, ["request body must be a JSON object"])
            location = self._location(body.get("locationId"))
            limit = _int_field(body, "pageLimit", SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT)
            page = _int_field(body, "page", 1, None)
            after = _search_after(body.get("searchAfter"))
            low_ms, high_ms = _added_range(body.get("filters"))
        except RequestError as exc:
            return _error(exc.status, exc.message)
        except ValueError as exc:
            return _error(422, [str(exc)])
        index = self.collections["contacts"].index(location)
        low = 0 if low_ms is None else index.time_at_or_after(low_ms)
        high = max(low, len(index) if high_ms is None else index.time_at_or_after(high_ms))
        if after is not None:
            start = max(low, index.after(after))
        elif page * limit > SEARCH_PAGE_WINDOW:
            message = f"page * pageLimit must not exceed {SEARCH_PAGE_WINDOW}; use searchAfter"
            return _error(422, [message])
        else:
            start = low + (page - 1) * limit
        stop = min(high, start + limit)
        contacts = b",".join(
            _with_search_after(index.record_json(position), index.keys[position])
            for position in range(start, stop)
        )
        body_bytes = b'{"contacts":[' + contacts + b'],"total":%d}' % (high - low)
        return Response(body_bytes, media_type="application/json")

    def _location(self, location: object) -> str:
        if not isinstance(location, str) or not location:
            raise RequestError(
                422, ["locationId must be a string", "locationId should not be empty"]
            )
        if self.location_ids is not None and location not in self.location_ids:
            raise RequestError(403, "The token does not have access to this location.")
        return location


def _error(status: int, message: str | list[str]) -> Response:
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if status == 422:
        body["error"] = "Unprocessable Entity"
    return json_response(status, body)


def _cursor(start_after: str | None, start_after_id: str | None) -> Key | None:
    if start_after in (None, ""):
        if start_after_id:
            raise ValueError("startAfterId needs startAfter (epoch milliseconds)")
        return None
    try:
        moment = int(float(start_after))
    except ValueError:
        raise ValueError(f"startAfter must be a number, got {start_after!r}") from None
    # Without an id, everything added in that millisecond counts as passed.
    return moment, start_after_id if start_after_id else "\U0010ffff"


def _search_after(value: object) -> Key | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int | float)):
        raise ValueError("searchAfter must be [dateAdded epoch ms, contact id]")
    return int(value[0]), str(value[1])


def _added_range(filters: object) -> tuple[int | None, int | None]:
    """The `dateAdded` range filters as [low, high) epoch milliseconds (None: unbounded)."""
    if filters is None:
        return None, None
    if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
        raise ValueError("filters must be a list of objects")
    lows: list[int] = []
    highs: list[int] = []
    for spec in filters:
        if spec.get("field") != "dateAdded" or spec.get("operator") != "range":
            continue  # not emulated
        value = spec.get("value")
        if not isinstance(value, dict) or not value.keys() & {"gte", "gt", "lte", "lt"}:
            raise ValueError("a dateAdded range needs a value with gte, gt, lte or lt")
        for bound in ("gte", "gt", "lte", "lt"):
            moment = value.get(bound)
            if moment is None:
                continue
            us = parse_moment(f"dateAdded {bound}", str(moment))
            if us is None:
                continue
            # A contact added at millisecond m lies at m * 1000 µs: the first millisecond in
            # range is ceil(us / 1000) for gte (and the end for lt), floor + 1 past a gt/lte.
            if bound in ("gte", "lt"):
                (lows if bound == "gte" else highs).append(-(-us // 1000))
            else:
                (lows if bound == "gt" else highs).append(us // 1000 + 1)
    return (max(lows) if lows else None), (min(highs) if highs else None)


def _int_field(body: dict[str, Any], name: str, default: int, maximum: int | None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must not be greater than {maximum}")
    return value


def _with_search_after(record: bytes, key: Key) -> bytes:
    """A contact as search returns it: with its own searchAfter cursor appended."""
    return record[:-1] + b',"searchAfter":' + dump_json([key[0], key[1]]) + b"}"
