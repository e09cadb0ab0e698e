"""How the source's records are read: a day of contacts, page by page (plain Python)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from costudy_pipelines.lib.clients.base import Page, TimeWindow, in_window
from costudy_pipelines.lib.clients.http import (
    ApiReader,
    JsonApiClient,
    MalformedResponseError,
    PageGuard,
)

PAGE_SIZE = 100
PATH = "/contacts"


def check_page(payload: Any) -> str | None:
    """What is wrong with a page's envelope, or None."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        return "expected {data: [...], next_cursor, total}"
    return None


class ContactsClient(ApiReader):
    """One client per sync; `reported(window)` is the total the API gave for that day."""

    def __init__(self, title: str, base_url: str, token: str) -> None:
        self.title = title
        self.api = JsonApiClient(title, base_url, token=token)
        self._totals: dict[TimeWindow, int | None] = {}

    def day(self, window: TimeWindow) -> Iterator[Page]:
        params: dict[str, Any] = {
            "created_after": window.start.isoformat(),
            "created_before": window.end.isoformat(),
            "limit": PAGE_SIZE,
        }
        guard = PageGuard(self.api, "GET", PATH)
        while True:
            payload = self.api.get(PATH, params=params, check=check_page)
            cursor = payload.get("next_cursor")
            guard.check(cursor, (record.get("id") for record in payload["data"]))
            total = payload.get("total")
            if total is not None and not isinstance(total, int):
                raise MalformedResponseError(
                    f"{self.title} GET {PATH}: total is not a number: {total!r}",
                    api=self.title,
                    method="GET",
                    path=PATH,
                )
            self._totals[window] = total
            page = in_window(payload["data"], "created_at", window)
            if page:
                yield page
            if not cursor:
                return
            params = {**params, "cursor": cursor}

    def reported(self, window: TimeWindow) -> int | None:
        return self._totals.pop(window, None)


def open_feed(settings: Mapping[str, str], feed: str) -> ContactsClient:
    """The feed's reader for one run, from the settings spec.py's API names."""
    return ContactsClient(feed, settings["base_url"], settings["token"])
