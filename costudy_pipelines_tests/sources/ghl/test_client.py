"""GoHighLevel contacts paging against a minimal server shaped like LeadConnector API v2."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from costudy_pipelines.lib.clients.base import TimeWindow, epoch_ms
from costudy_pipelines.lib.clients.http import ApiError, RateLimit, RepeatedPageError
from costudy_pipelines.sandbox.servers import GoHighLevelServer
from costudy_pipelines.sources.ghl.client import GhlClient, reported_count, reported_total
from costudy_pipelines_tests.lib.clients.live import Recorder, serve

TOKEN = "ghl_pit_" + "t" * 20
LOCATION = "ve9EPM428h8vShlRW1KT"
DAY = TimeWindow.day("2025-03-02")
FREE = RateLimit(requests=1000, per_seconds=1.0)  # the client's own limiter out of the way


def contact(number: int, added: datetime) -> dict[str, Any]:
    return {
        "id": f"c{number:03d}",
        "locationId": LOCATION,
        "email": f"lead{number}@example.com",
        "firstName": "Zoë",
        "lastName": "O'Brien; DROP TABLE",
        "tags": ["lead"],
        "dateAdded": added.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "customFields": [{"id": "cf1", "value": str(number)}],
    }


def contacts() -> list[dict[str, Any]]:
    start = DAY.start - timedelta(days=1)
    rows = [contact(n, start + timedelta(hours=5 * n, milliseconds=n)) for n in range(14)]
    rows += [contact(90, DAY.start), contact(91, DAY.start), contact(92, DAY.end)]
    return sorted(rows, key=order_key)


def order_key(row: dict[str, Any]) -> tuple[int, str]:
    return epoch_ms(datetime.fromisoformat(row["dateAdded"])), row["id"]


@dataclass
class GhlServer:
    """The two contacts endpoints, with the documented headers and limits."""

    rows: list[dict[str, Any]]
    descending: bool = False
    rate_max: int = 1000
    rate_interval_ms: int = 1000
    honour_filters: bool = True
    search_depth: int = 10_000
    list_cap: int = 100  # a server may serve fewer than the limit asked for
    recorder: Recorder = field(default_factory=Recorder)
    _window: list[float] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/contacts/", self.list_contacts),
                Route("/contacts/search", self.search, methods=["POST"]),
            ]
        )

    def refuse(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"message": "Invalid JWT"}, status_code=401)
        if request.headers.get("version") != "2021-07-28":
            return JSONResponse({"message": "Version header is required"}, status_code=400)
        now = time.monotonic()
        self._window = [t for t in self._window if now - t < self.rate_interval_ms / 1000]
        if len(self._window) >= self.rate_max:
            wait_ms = int(self.rate_interval_ms - (now - self._window[0]) * 1000) + 1
            return JSONResponse(
                {"message": "Too many requests"},
                status_code=429,
                headers={**self.rate_headers(0), "retry-after-ms": str(wait_ms)},
            )
        self._window.append(now)
        return None

    def rate_headers(self, remaining: int | None = None) -> dict[str, str]:
        left = self.rate_max - len(self._window) if remaining is None else remaining
        return {
            "X-RateLimit-Max": str(self.rate_max),
            "X-RateLimit-Remaining": str(left),
            "X-RateLimit-Interval-Milliseconds": str(self.rate_interval_ms),
        }

    async def list_contacts(self, request: Request) -> Response:
        await self.recorder.record(request)
        if refused := self.refuse(request):
            return refused
        query = request.query_params
        limit = int(query.get("limit", "20"))
        if limit > 100 or query.get("locationId") != LOCATION:
            return JSONResponse({"message": "bad request"}, status_code=422)
        rows = self.rows[::-1] if self.descending else self.rows
        if "startAfter" in query:
            after = int(query["startAfter"])
            if "startAfterId" in query:
                rows = [r for r in rows if order_key(r) > (after, query["startAfterId"])]
            else:
                rows = [r for r in rows if order_key(r)[0] > after]
        page = rows[: min(limit, self.list_cap)]
        meta: dict[str, Any] = {"total": len(self.rows), "nextPageUrl": None}
        if page:
            meta |= {"startAfter": order_key(page[-1])[0], "startAfterId": page[-1]["id"]}
        if len(rows) > len(page):
            meta["nextPageUrl"] = f"/contacts/?startAfter={meta['startAfter']}"
        body = {"contacts": page, "count": len(page), "meta": meta}
        return JSONResponse(body, headers=self.rate_headers())

    async def search(self, request: Request) -> Response:
        hit = await self.recorder.record(request)
        if refused := self.refuse(request):
            return refused
        body = json.loads(hit.body)
        size = body["pageLimit"]
        if size > 500 or body.get("sort") != [{"field": "dateAdded", "direction": "asc"}]:
            return JSONResponse({"message": "bad request"}, status_code=422)
        rows = [{**r, "searchAfter": list(order_key(r))} for r in self.rows]
        for spec in body.get("filters", []) if self.honour_filters else []:
            low, high = (datetime.fromisoformat(spec["value"][k]) for k in ("gte", "lt"))
            rows = [r for r in rows if low <= datetime.fromisoformat(r["dateAdded"]) < high]
        total = len(rows)  # the search's, whatever page of it is asked for
        if "searchAfter" in body:
            rows = [r for r in rows if tuple(r["searchAfter"]) > tuple(body["searchAfter"])]
            page = rows[:size]
        elif body["page"] * size > self.search_depth:
            return JSONResponse({"message": "use searchAfter beyond 10000"}, status_code=422)
        else:
            page = rows[(body["page"] - 1) * size : body["page"] * size]
        return JSONResponse({"contacts": page, "total": total}, headers=self.rate_headers())


def ids(pages: list[list[dict[str, Any]]]) -> list[str]:
    return [row["id"] for page in pages for row in page]


def client(url: str, **options: Any) -> GhlClient:
    options.setdefault("rate_limit", FREE)
    return GhlClient(TOKEN, LOCATION, base_url=url, **options)


def in_day(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows if DAY.contains(datetime.fromisoformat(r["dateAdded"]))]


def test_list_pages_feed_back_start_after_to_the_end() -> None:
    server = GhlServer(contacts())
    with serve(server.app()) as url, client(url, page_size=4) as ghl:
        pages = list(ghl.contacts())
    assert [len(page) for page in pages] == [4, 4, 4, 4, 1]
    assert [row for page in pages for row in page] == server.rows
    second = server.recorder.hits[1].params
    assert (int(second["startAfter"]), second["startAfterId"]) == order_key(server.rows[3])
    assert all(hit.headers["version"] == "2021-07-28" for hit in server.recorder.hits)


def test_next_page_url_keeps_paging_when_the_server_serves_less_than_asked() -> None:
    server = GhlServer(contacts(), list_cap=3)
    with serve(server.app()) as url, client(url, page_size=5) as ghl:
        pages = list(ghl.contacts())
    assert [len(page) for page in pages] == [3, 3, 3, 3, 3, 2]
    assert [row for page in pages for row in page] == server.rows


def test_a_daily_window_seeks_to_its_start_and_stops_at_its_end() -> None:
    server = GhlServer(contacts())
    with serve(server.app()) as url, client(url, page_size=3) as ghl:
        got = ids(list(ghl.contacts(DAY)))
    assert got == in_day(server.rows)
    assert {"c090", "c091"} <= set(got) and "c092" not in got
    first = server.recorder.hits[0].params
    assert int(first["startAfter"]) == epoch_ms(DAY.start) - 1
    # Only the window's pages and one more: the days before and after are never read.
    assert len(server.recorder.hits) <= len(got) // 3 + 2


def test_a_list_out_of_date_order_is_an_error_not_missing_data() -> None:
    server = GhlServer(contacts(), descending=True)
    with (
        serve(server.app()) as url,
        client(url, page_size=5) as ghl,
        pytest.raises(ApiError, match="not in ascending dateAdded order"),
    ):
        list(ghl.contacts(DAY))


def test_rate_limit_headers_slow_the_client_down_before_a_429() -> None:
    server = GhlServer(contacts(), rate_max=4, rate_interval_ms=200)
    with serve(server.app()) as url:
        with client(url, page_size=2) as ghl:
            assert ids(list(ghl.contacts())) == [r["id"] for r in server.rows]
            assert ghl.counters.rate_limited == 0
        time.sleep(0.25)
        # The same reads with the header check switched off do run into the limit.
        with client(url, page_size=2, rate_header_reserve=-1) as careless:
            list(careless.contacts())
            assert careless.counters.rate_limited > 0


def test_search_pages_by_search_after_from_the_second_page() -> None:
    server = GhlServer(contacts())
    with serve(server.app()) as url, client(url, search_page_size=3) as ghl:
        pages = list(ghl.search_contacts())
    # every contact as stored, without the paging cursor search adds to each one
    assert [contact for page in pages for contact in page] == server.rows
    bodies = [json.loads(hit.body) for hit in server.recorder.hits]
    assert bodies[0]["page"] == 1 and "searchAfter" not in bodies[0]
    assert all("page" not in body for body in bodies[1:])
    assert [body["searchAfter"] for body in bodies[1:]] == [
        list(order_key(server.rows[n])) for n in (2, 5, 8, 11, 14)
    ]
    # 17 contacts in pages of 3: the sixth page is short and completes the reported total
    assert len(bodies) == 6


def sandbox(**options: Any) -> GoHighLevelServer:
    """The project's GoHighLevel sandbox serving contacts(), made as awkward as `options` say."""
    return GoHighLevelServer(token=TOKEN, contacts=contacts(), **options)


def test_short_pages_before_the_end_do_not_end_the_read() -> None:
    rows = contacts()
    with (
        sandbox(page_cap=2) as sandbox_ghl,
        client(sandbox_ghl.base_url, page_size=5, search_page_size=5) as ghl,
    ):
        listed = ids(list(ghl.contacts()))
        search = ghl.search_contacts()
        searched = ids(list(search))
    assert listed == searched == [row["id"] for row in rows]
    assert search.total == len(rows) and search.missing_count is None
    # the search read by cursor: 2 contacts a page, and no request beyond the reported total
    searches = [hit for hit in sandbox_ghl.request_log if hit.path == "/contacts/search"]
    assert len(searches) == -(-len(rows) // 2)


def test_without_a_count_the_search_reads_to_an_empty_page_and_says_so() -> None:
    rows = contacts()
    with (
        sandbox(page_cap=2, search_count_field=None) as sandbox_ghl,
        client(sandbox_ghl.base_url, search_page_size=5) as ghl,
    ):
        search = ghl.search_contacts(DAY)
        assert reported_total([search]) is None  # not read yet: nothing to say
        assert ids(list(search)) == in_day(rows)
    assert search.total is None
    assert (
        search.missing_count == "the search answered without a count (neither `total` nor `count`)"
    )
    assert reported_total([search]) == search.missing_count
    searches = [hit for hit in sandbox_ghl.request_log if hit.path == "/contacts/search"]
    assert len(searches) == -(-len(in_day(rows)) // 2) + 1  # and one empty page


def test_the_reference_count_field_is_read_like_total() -> None:
    with (
        sandbox(search_count_field="count") as sandbox_ghl,
        client(sandbox_ghl.base_url, search_page_size=4) as ghl,
    ):
        search = ghl.search_contacts(DAY)
        got = ids(list(search))
    assert search.total == len(got) == len(in_day(contacts()))


def test_a_count_that_is_not_a_number_is_reported_as_missing() -> None:
    assert reported_count({"contacts": [], "total": "12"}) == (
        None,
        "the search answered total='12', not a count",
    )
    assert reported_count({"contacts": [], "count": 3}) == (3, None)


@pytest.mark.parametrize("honour_filters", [True, False])
def test_search_window_is_exact_whether_or_not_the_server_filters(honour_filters: bool) -> None:
    server = GhlServer(contacts(), honour_filters=honour_filters)
    with serve(server.app()) as url, client(url, search_page_size=4) as ghl:
        search = ghl.search_contacts(DAY)
        assert search.total is None  # nothing read yet
        got = ids(list(search))
    assert got == in_day(server.rows)
    # The API's total is the window's only where the server filtered: otherwise it is not said.
    assert search.total == (len(got) if honour_filters else None)
    window_filter = json.loads(server.recorder.hits[0].body)["filters"][0]
    assert window_filter["field"] == "dateAdded" and window_filter["operator"] == "range"


def test_reported_total_sums_the_searches_and_is_unknown_if_one_is() -> None:
    server = GhlServer(contacts())
    with serve(server.app()) as url, client(url, search_page_size=4) as ghl:
        searches = [ghl.search_contacts(DAY), ghl.search_contacts(DAY)]  # e.g. two locations
        for search in searches:
            list(search)
        assert reported_total(searches) == 2 * len(in_day(server.rows))
        assert reported_total([*searches, ghl.search_contacts(DAY)]) is None  # one unread


def test_a_search_that_ignores_the_cursor_is_stopped() -> None:
    server = GhlServer(contacts(), search_depth=10_000)
    first = [{**row, "searchAfter": list(order_key(row))} for row in server.rows[:3]]

    async def first_page_forever(request: Request) -> Response:
        await server.recorder.record(request)
        return JSONResponse({"contacts": first, "total": len(server.rows)})

    app = Starlette(routes=[Route("/contacts/search", first_page_forever, methods=["POST"])])
    with (
        serve(app) as url,
        client(url, search_page_size=3) as ghl,
        pytest.raises(RepeatedPageError, match="GoHighLevel POST /contacts/search: page 2"),
    ):
        list(ghl.search_contacts())
    assert len(server.recorder.hits) == 2
