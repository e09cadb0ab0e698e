"""GoHighLevel (LeadConnector API v2) contacts: `GET /contacts/` and `POST /contacts/search`.

Shapes follow shared/reference/gohighlevel (contacts OpenAPI). Errors use the NestJS shape the
API answers with ({"statusCode", "message"}, 422s with a list of messages and "error"); a
missing Version header is a 401 "version header was not found." as the live API answers.
Contacts are ordered by (dateAdded in ms, id), the pair the startAfter/startAfterId and
searchAfter cursors carry. Search emulates a `dateAdded` range filter (gte/gt/lte/lt,
ISO-8601), whose pages and `total` are the range's contacts only, as the live API answers, and
`sort` by dateAdded (asc or desc). Whatever else a request asks for is refused with a 422, as
the API's request validation does for unknown properties: a client relying on a filter, a sort
or a parameter the sandbox does not emulate fails its tests instead of passing them on data
the real API would have filtered.

Options to make the sandbox as awkward as the real API may be: `page_cap` serves at most that
many contacts a page whatever the limit asked (short pages before the end, for list and search
alike); `search_count_field` names the search's count `total` (as the live API), `count` (as
the reference OpenAPI) or leaves it out (None).
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
LIST_PARAMETERS = frozenset({"locationId", "limit", "startAfter", "startAfterId", "query"})
SEARCH_PROPERTIES = frozenset(
    {"locationId", "page", "pageLimit", "searchAfter", "filters", "sort", "query"}
)
SORT_DIRECTIONS = ("asc", "desc")
RANGE_BOUNDS = ("gte", "gt", "lte", "lt")


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
        page_cap: int | None = None,
        search_count_field: str | None = "total",
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
    ) -> None:
        if page_cap is not None and page_cap < 1:
            raise ValueError(f"page_cap must be 1 or more, not {page_cap}")
        if search_count_field not in ("total", "count", None):
            raise ValueError("search_count_field must be 'total', 'count' or None")
        self._authorization = expected_authorization(token, "GoHighLevelServer")
        self.location_ids = None if location_ids is None else frozenset(location_ids)
        self.page_cap = page_cap
        self.search_count_field = search_count_field
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
            _refuse_unknown(query.keys(), LIST_PARAMETERS)
            _refuse_query(query.get("query"))
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
        page_size = limit or LIST_DEFAULT_LIMIT
        start = 0 if after is None else index.after(after)
        stop = min(len(index), start + self._served(page_size))
        more = stop < len(index)
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
        every returned contact carries; in dateAdded order, ascending unless sorted desc."""
        try:
            body = await read_json(request)
            if not isinstance(body, dict):
                raise RequestError(422, ["request body must be a JSON object"])
            _refuse_unknown(body.keys(), SEARCH_PROPERTIES)
            _refuse_query(body.get("query"))
            location = self._location(body.get("locationId"))
            limit = _int_field(body, "pageLimit", SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT)
            page = _int_field(body, "page", 1, None)
            after = _search_after(body.get("searchAfter"))
            low_ms, high_ms = _added_range(body.get("filters"))
            descending = _descending(body.get("sort"))
        except RequestError as exc:
            return _error(exc.status, exc.message)
        except ValueError as exc:
            return _error(422, [str(exc)])
        if after is None and page * limit > SEARCH_PAGE_WINDOW:
            message = f"page * pageLimit must not exceed {SEARCH_PAGE_WINDOW}; use searchAfter"
            return _error(422, [message])
        index = self.collections["contacts"].index(location)
        low = 0 if low_ms is None else index.time_at_or_after(low_ms)
        high = max(low, len(index) if high_ms is None else index.time_at_or_after(high_ms))
        served = self._served(limit)
        if descending:  # "after" a cursor means older; pages count down from the newest
            if after is None:
                top = high - (page - 1) * limit
            else:
                top = min(high, index.at_or_after(after))
            positions = range(top - 1, max(low, top - served) - 1, -1)
        else:
            start = low + (page - 1) * limit if after is None else max(low, index.after(after))
            positions = range(start, min(high, start + served))
        contacts = b",".join(
            _with_search_after(index.record_json(position), index.keys[position])
            for position in positions
        )
        count = b""
        if self.search_count_field is not None:
            count = b',"%s":%d' % (self.search_count_field.encode(), high - low)
        return Response(
            b'{"contacts":[' + contacts + b"]" + count + b"}", media_type="application/json"
        )

    def _served(self, limit: int) -> int:
        """How many contacts a page holds when `limit` are asked for."""
        return limit if self.page_cap is None else min(limit, self.page_cap)

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
    for number, spec in enumerate(filters):
        if spec.get("field") != "dateAdded" or spec.get("operator") != "range":
            raise ValueError(
                f"filters.{number}: field {spec.get('field')!r} with operator "
                f"{spec.get('operator')!r} is not emulated by the sandbox (only a dateAdded "
                "range is)"
            )
        value = spec.get("value")
        if not isinstance(value, dict) or not value.keys() & set(RANGE_BOUNDS):
            raise ValueError("a dateAdded range needs a value with gte, gt, lte or lt")
        if unknown := sorted(value.keys() - set(RANGE_BOUNDS)):
            raise ValueError(f"filters.{number}.value: unknown bound(s) {unknown}")
        for bound in RANGE_BOUNDS:
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


def _descending(sort: object) -> bool:
    """Whether `sort` asks for newest first; a sort on anything but dateAdded is refused."""
    if sort is None:
        return False
    if not isinstance(sort, list) or not all(isinstance(item, dict) for item in sort):
        raise ValueError("sort must be a list of {field, direction} objects")
    if len(sort) > 1 or any(item.get("field") != "dateAdded" for item in sort):
        fields = [item.get("field") for item in sort]
        raise ValueError(f"sort by {fields} is not emulated by the sandbox (only dateAdded is)")
    direction = sort[0].get("direction", "asc") if sort else "asc"
    if direction not in SORT_DIRECTIONS:
        raise ValueError(f"sort.0.direction must be one of {list(SORT_DIRECTIONS)}")
    return direction == "desc"


def _refuse_unknown(names: Iterable[str], known: frozenset[str]) -> None:
    """The API validates its requests: a property it does not know is a 422, not ignored."""
    unknown = sorted(set(names) - known)
    if unknown:
        raise RequestError(422, [f"property {name} should not exist" for name in unknown])


def _refuse_query(query: object) -> None:
    if query not in (None, ""):
        raise RequestError(422, ["query (full-text search) is not emulated by the sandbox"])


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
