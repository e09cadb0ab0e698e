"""GoHighLevel (LeadConnector API v2) contacts of one location, read page by page.

Two ways to read, both yielding contacts exactly as returned (search without the paging
cursor it adds to every contact):

- `contacts(window)`: `GET /contacts/?locationId&limit&startAfter&startAfterId`. The list is
  ordered by `dateAdded` and `startAfter` is the epoch-ms `dateAdded` to continue after, so
  a daily window is read by seeking to `startAfter = start - 1 ms` and stopping at the first
  contact added at or after the window's end: one window costs its own pages plus at most
  one, however large the location. This endpoint has no server-side date filter; the seek
  relies on the ascending order, which the client verifies (out-of-order pages are an
  error, never silently skipped data). It is deprecated but live, and the efficient choice.
- `search_contacts(window)`: `POST /contacts/search` with a `dateAdded` range filter and
  ascending sort: `page: 1`, then always the `searchAfter` cursor of the last contact read
  (page numbers would skip contacts after a page the server cut short). A short page is not
  the end: the read ends at an empty page, or at a short one once as many contacts as the
  reported count have come. The window is also enforced client-side, so a server that
  ignores the filter still yields exactly the window (after a full scan). The search is a
  `ContactSearch`: once read to the end, its `total` is the count the API reported (the
  response's `total`, or `count` as the reference OpenAPI names it), which the sync compares
  with what it stored (`counts_match_source`); where there is none, `missing_count` says why.

Every call sends `Authorization: Bearer` and `Version: 2021-07-28`; `X-RateLimit-Remaining`
near zero pauses every client of the location for one rate-limit interval before a 429.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import chain
from typing import Any

import httpx

from costudy_pipelines.lib.clients.base import (
    Page,
    TimeWindow,
    epoch_ms,
    in_window,
    parse_timestamp,
)
from costudy_pipelines.lib.clients.http import (
    ApiError,
    ApiReader,
    JsonApiClient,
    PageGuard,
    RateLimit,
    RateLimiter,
    RetryPolicy,
    Timeouts,
    shared_rate_limiter,
)

GHL_URL = "https://services.leadconnectorhq.com"
GHL_VERSION = "2021-07-28"
# Documented burst limit: 100 requests / 10 s per app and location.
GHL_RATE_LIMIT = RateLimit(requests=100, per_seconds=10.0)
MAX_LIST_LIMIT = 100
MAX_SEARCH_PAGE_LIMIT = 500
LIST_PATH = "/contacts/"
SEARCH_PATH = "/contacts/search"
# The cursor search adds to every contact it returns, fed back to read past the page depth.
SEARCH_CURSOR = "searchAfter"
# The search's count: `total` as the live API answers, `count` as the reference OpenAPI names it.
COUNT_FIELDS = ("total", "count")
NO_COUNT = "the search answered without a count (neither `total` nor `count`)"
OUTSIDE_WINDOW = (
    "the search returned contacts outside the window (the server ignored the dateAdded filter), "
    "so its count is not the window's"
)


def check_contacts_payload(payload: Any) -> str | None:
    """What is wrong with a contacts answer (list or search), or None."""
    if not isinstance(payload, dict):
        return f"expected a JSON object, got {type(payload).__name__}"
    contacts = payload.get("contacts")
    if not isinstance(contacts, list) or not all(isinstance(item, dict) for item in contacts):
        return "'contacts' is not a list of objects"
    meta = payload.get("meta")
    if meta is not None and not isinstance(meta, dict):
        return "'meta' is not an object"
    return None


def rate_header_observer(limiter: RateLimiter, reserve: int) -> Callable[[httpx.Response], None]:
    """Pause `limiter` for one interval when `X-RateLimit-Remaining` drops to `reserve`."""

    def observe(response: httpx.Response) -> None:
        remaining = _int_header(response, "X-RateLimit-Remaining")
        interval_ms = _int_header(response, "X-RateLimit-Interval-Milliseconds")
        if remaining is not None and interval_ms and remaining <= reserve:
            limiter.pause_for(interval_ms / 1000)

    return observe


def _int_header(response: httpx.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


class GhlClient(ApiReader):
    """Pages of raw GoHighLevel contacts for one location; `counters` for asset metadata."""

    def __init__(
        self,
        token: str,
        location_id: str,
        *,
        base_url: str = GHL_URL,
        page_size: int = MAX_LIST_LIMIT,
        search_page_size: int = MAX_SEARCH_PAGE_LIMIT,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit = GHL_RATE_LIMIT,
        rate_header_reserve: int = 2,
    ) -> None:
        if not 1 <= page_size <= MAX_LIST_LIMIT:
            raise ValueError(f"GoHighLevel page_size must be 1..{MAX_LIST_LIMIT}")
        if not 1 <= search_page_size <= MAX_SEARCH_PAGE_LIMIT:
            raise ValueError(f"GoHighLevel search_page_size must be 1..{MAX_SEARCH_PAGE_LIMIT}")
        self.location_id = location_id
        self.page_size = page_size
        self.search_page_size = search_page_size
        # The documented limit is per app and location: one limiter per location.
        limiter = shared_rate_limiter(f"GoHighLevel {base_url} {location_id}", rate_limit)
        self.api = JsonApiClient(
            "GoHighLevel",
            base_url,
            token=token,
            headers={"Version": GHL_VERSION},
            timeouts=timeouts or Timeouts(),
            retry=retry or RetryPolicy(),
            rate_limiter=limiter,
            on_response=rate_header_observer(limiter, rate_header_reserve),
        )

    def contacts(self, window: TimeWindow | None = None) -> Iterator[Page]:
        """All contacts (added within `window`, if given) through `GET /contacts/`."""
        params: dict[str, Any] = {"locationId": self.location_id, "limit": self.page_size}
        if window is not None:
            params["startAfter"] = epoch_ms(window.start) - 1
        guard = PageGuard(self.api, "GET", LIST_PATH)
        order = _AddedOrder(self.api, window)
        while True:
            payload = self.api.get(LIST_PATH, params=params, check=check_contacts_payload)
            contacts, meta = payload["contacts"], payload.get("meta") or {}
            more = _list_has_more(contacts, meta)
            cursor = (meta.get("startAfter"), meta.get("startAfterId"))
            guard.check(cursor if more else None, (c.get("id") for c in contacts))
            page, past_end = order.take(contacts)
            if page:
                yield page
            if past_end or not more:
                return
            if None in cursor:
                raise ApiError(
                    f"{self.api.describe('GET', LIST_PATH, params)}: more contacts follow but "
                    "meta.startAfter/startAfterId are missing: cannot continue",
                    api=self.api.api,
                    method="GET",
                    path=LIST_PATH,
                )
            params = {**params, "startAfter": cursor[0], "startAfterId": cursor[1]}

    def search_contacts(self, window: TimeWindow | None = None) -> ContactSearch:
        """All contacts (added within `window`, if given) through `POST /contacts/search`."""
        return ContactSearch(self, window)

    def _search_pages(self, search: ContactSearch) -> Iterator[Page]:
        window = search.window
        body: dict[str, Any] = {
            "locationId": self.location_id,
            "pageLimit": self.search_page_size,
            "sort": [{"field": "dateAdded", "direction": "asc"}],
        }
        if window is not None:
            body["filters"] = [
                {
                    "field": "dateAdded",
                    "operator": "range",
                    "value": {"gte": window.start.isoformat(), "lt": window.end.isoformat()},
                }
            ]
        guard = PageGuard(self.api, "POST", SEARCH_PATH)
        position: dict[str, Any] = {"page": 1}
        read = 0
        filtered = True  # whether the server kept to the window, so its count is the window's
        while True:
            payload = self.api.post(
                SEARCH_PATH, json={**body, **position}, check=check_contacts_payload
            )
            contacts = payload["contacts"]
            reported, missing = reported_count(payload)  # the last page's: the latest state
            read += len(contacts)
            short = len(contacts) < self.search_page_size
            done = not contacts or (short and reported is not None and read >= reported)
            cursor = None if done else self._search_after(contacts[-1])
            guard.check(tuple(cursor) if cursor else None, (c.get("id") for c in contacts))
            page = contacts if window is None else in_window(contacts, "dateAdded", window)
            filtered = filtered and len(page) == len(contacts)
            if page:
                yield [_without_search_cursor(contact) for contact in page]
            if cursor is None:
                search.total = reported if filtered else None
                search.missing_count = missing if filtered else OUTSIDE_WINDOW
                return
            position = {SEARCH_CURSOR: cursor}

    def _search_after(self, contact: dict[str, Any]) -> list[Any]:
        cursor = contact.get(SEARCH_CURSOR)
        if not isinstance(cursor, list) or not cursor:
            raise ApiError(
                f"{self.api.describe('POST', SEARCH_PATH)}: contact {contact.get('id')!r} "
                "carries no searchAfter cursor: cannot read on past it",
                api=self.api.api,
                method="POST",
                path=SEARCH_PATH,
            )
        return cursor


class ContactSearch:
    """One search of a location: iterate it (once) for its pages of contacts.

    `total` is the number of contacts the API reported for the search, set once the last page
    has been read. Where it stays None after the read, `missing_count` says why: the answer
    carried no count, or the server returned contacts outside the window (it ignored the
    filter, so its count is not the window's).
    """

    def __init__(self, client: GhlClient, window: TimeWindow | None) -> None:
        self.window = window
        self.total: int | None = None
        self.missing_count: str | None = None
        self._client = client

    def __iter__(self) -> Iterator[Page]:
        return self._client._search_pages(self)


def reported_total(searches: Iterable[ContactSearch]) -> int | str | None:
    """What the API reported for these searches together (e.g. one per location): the summed
    count; or why there is none (a search that reported no count: `missing_count`); or None
    when a search has not been read to its end."""
    total = 0
    for search in searches:
        if search.total is None:
            return search.missing_count
        total += search.total
    return total


def reported_count(payload: dict[str, Any]) -> tuple[int | None, str | None]:
    """The count a search answer reports (`total`, or `count` as the reference OpenAPI names
    it: a non-negative integer), else None and why."""
    for name in COUNT_FIELDS:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value, None
        if value is not None:
            return None, f"the search answered {name}={value!r}, not a count"
    return None, NO_COUNT


def _list_has_more(contacts: list[dict[str, Any]], meta: dict[str, Any]) -> bool:
    """Whether another list page follows. `meta.nextPageUrl` says so where the server sends it
    (a server that caps `limit` lower still pages on); otherwise only an empty page is the end:
    a short one may come before it."""
    if not contacts:
        return False
    if "nextPageUrl" in meta:
        return bool(meta["nextPageUrl"])
    return True


class _AddedOrder:
    """Trims list pages to the window and proves they arrive in ascending `dateAdded` order."""

    def __init__(self, api: JsonApiClient, window: TimeWindow | None) -> None:
        self._api = api
        self._window = window
        self._last: datetime | None = None

    def take(self, contacts: list[dict[str, Any]]) -> tuple[Page, bool]:
        """The contacts inside the window, and whether the window's end has been passed.

        The whole page is checked for order before anything is trimmed: a descending list
        would otherwise end the read at its first (newest) contact without a word.
        """
        if self._window is None:
            return contacts, False
        added = [parse_timestamp(contact.get("dateAdded")) for contact in contacts]
        for contact, moment in zip(contacts, added, strict=True):
            if moment is not None:
                self._check_order(contact, moment)
        page: Page = []
        for contact, moment in zip(contacts, added, strict=True):
            if moment is None:
                page.append(contact)  # kept: validation rejects it with its reason
            elif moment >= self._window.end:
                return page, True
            elif moment >= self._window.start:
                page.append(contact)
        return page, False

    def _check_order(self, contact: dict[str, Any], added: datetime) -> None:
        if self._last is not None and added < self._last:
            raise ApiError(
                f"{self._api.describe('GET', LIST_PATH)}: contact {contact.get('id')!r} "
                f"(dateAdded {added.isoformat()}) came after one added {self._last.isoformat()}: "
                "the list is not in ascending dateAdded order, so a windowed read would miss "
                "contacts; read this location with search_contacts(window) instead",
                api=self._api.api,
                method="GET",
                path=LIST_PATH,
            )
        self._last = added


def _without_search_cursor(contact: dict[str, Any]) -> dict[str, Any]:
    """The contact as it is, without the paging cursor search adds to each one: the cursor is
    not the contact's data, and keeping it would make the same contact hash differently
    depending on the endpoint that read it."""
    if SEARCH_CURSOR not in contact:
        return contact
    return {field: value for field, value in contact.items() if field != SEARCH_CURSOR}


class DayContacts:
    """The day extract of every location: call it with a window for the day's pages (search:
    a server-side dateAdded filter, 500 per page; the list endpoint has none), then
    `reported(window)`, once those pages are read, for the total the API reported for them.
    What the asset and the load-path benchmark both run."""

    def __init__(self, clients: Sequence[GhlClient]) -> None:
        self.clients = clients
        self._searches: dict[TimeWindow, list[ContactSearch]] = {}

    def __call__(self, window: TimeWindow) -> Iterator[Page]:
        self._searches[window] = [client.search_contacts(window) for client in self.clients]
        return chain.from_iterable(self._searches[window])

    def reported(self, window: TimeWindow) -> int | str | None:
        """The count, or why there is none (for counts_match_source)."""
        return reported_total(self._searches.pop(window))


class ContactsFeed(DayContacts):
    """The contacts of every location, read day by day for one run: what the generic API
    builder runs for the contacts feed (spec.py's `open_feed`)."""

    def day(self, window: TimeWindow) -> Iterator[Page]:
        return self(window)

    def run_figures(self) -> dict[str, int]:
        return {
            "locations": len(self.clients),
            "api_requests": sum(client.counters.requests for client in self.clients),
        }

    def close(self) -> None:
        for client in self.clients:
            client.close()


def open_feed(settings: Mapping[str, str], feed: str) -> ContactsFeed:
    """The feed's reader from its settings: token, location_ids (comma-separated), base_url."""
    locations = [location.strip() for location in settings["location_ids"].split(",")]
    base_url = settings.get("base_url") or GHL_URL
    return ContactsFeed(
        [
            GhlClient(settings["token"], location, base_url=base_url)
            for location in locations
            if location
        ]
    )
