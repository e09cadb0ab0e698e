"""Whop API v1: payments, memberships and users, read page by page with cursor pagination.

`GET /payments?first=N&after=CURSOR&created_after=ISO&created_before=ISO` answers
`{"data": [...], "page_info": {"end_cursor", "has_next_page", ...}}`. Records are yielded
exactly as returned.

Whop dates its API versions and answers each request in the shapes of the version it names
(`Api-Version-Date`; without it, the version pinned to the API key, which nobody here
controls). The client pins `WHOP_API_VERSION`, the default of the official SDK release whose
models are the contract the sandbox is tested against (`whop-sdk` 2.6.0): payments with flat
`*_id` fields, Money objects and the payer's address in `customer_email`. Validation still
reads the older shapes (floats, nested objects, `user.email`).

A 2.6.0 membership carries no address: it names its buyer (`user_id`). The buyer's address is
on their member record (`GET /members`, `Member.email`; `User.email` is filled only for the
caller's own `me`, so the users endpoint cannot give it, and users read with a null `email`
get theirs the same way). The client looks the addresses up in
batches of `MEMBER_BATCH` user ids (`GET /members?user_ids=...`), caches them for its life
(one client per sync run), and adds them to each membership under `RESOLVED_KEY`, a key no
Whop shape has: `{"member_email": ..., "member_user_id": ...}`. The raw record stored is
Whop's membership plus that key, so a reject replay reads the same address.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from costudy_pipelines.lib.clients.base import Page, TimeWindow, in_window
from costudy_pipelines.lib.clients.http import (
    ApiReader,
    JsonApiClient,
    PageGuard,
    RateLimit,
    RetryPolicy,
    Timeouts,
    shared_rate_limiter,
)
from costudy_pipelines.sources.whop.records import RESOLVED_KEY

WHOP_V1_URL = "https://api.whop.com/api/v1"
# The API version asked for; change it together with the SDK models the tests parse with.
WHOP_API_VERSION = "2026-10-15-1"
VERSION_HEADER = "Api-Version-Date"
# Whop documents 100 requests / 10 s for v2 and 20 / 10 s for v5; v1's limit is not
# documented, so the v2 figure is the default and the resource can lower it.
WHOP_RATE_LIMIT = RateLimit(requests=100, per_seconds=10.0)
MAX_PAGE_SIZE = 100
RESOURCES = ("payments", "memberships", "users")
# user ids per members lookup: one page of members (Whop's page maximum)
MEMBER_BATCH = MAX_PAGE_SIZE


# Whop does not document whether created_after/created_before are inclusive, nor their
# precision. The request widens the window by this much and the client trims to [start, end).
WINDOW_SLACK = timedelta(seconds=1)


def check_cursor_page(payload: Any) -> str | None:
    """What is wrong with a v1 list answer, or None."""
    if not isinstance(payload, dict):
        return f"expected a JSON object, got {type(payload).__name__}"
    data, page_info = payload.get("data"), payload.get("page_info")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        return "'data' is not a list of objects"
    if not isinstance(page_info, dict) or not isinstance(page_info.get("has_next_page"), bool):
        return "'page_info.has_next_page' is missing"
    if page_info["has_next_page"] and not page_info.get("end_cursor"):
        return "'has_next_page' is true but 'end_cursor' is empty"
    return None


def with_member_email(
    record: dict[str, Any],
    emails: Mapping[str, str | None],
    user_field: str = "user_id",
    only_without: str | None = None,
) -> dict[str, Any]:
    """The record with its user's address from `emails` (user id -> member email) under
    RESOLVED_KEY; as it is when it already carries `only_without` (a user's own email)."""
    if only_without and record.get(only_without):
        return record
    user_id = record.get(user_field)
    email = emails.get(user_id) if isinstance(user_id, str) else None
    return {**record, RESOLVED_KEY: {"member_email": email, "member_user_id": user_id}}


def member_email_index(members: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """User id -> address, from Whop member records (`Member.user.id`, `Member.email`)."""
    index: dict[str, str | None] = {}
    for member in members:
        user = member.get("user")
        user_id = user.get("id") if isinstance(user, Mapping) else None
        if isinstance(user_id, str) and index.get(user_id) is None:
            email = member.get("email")
            index[user_id] = email if isinstance(email, str) else None
    return index


class WhopClient(ApiReader):
    """Pages of raw Whop v1 records; one client per sync, `counters` for asset metadata."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = WHOP_V1_URL,
        company_id: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit = WHOP_RATE_LIMIT,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"Whop page_size must be 1..{MAX_PAGE_SIZE}, not {page_size}")
        self.company_id = company_id
        self.page_size = page_size
        self.api = JsonApiClient(
            "Whop",
            base_url,
            token=api_key,
            headers={VERSION_HEADER: WHOP_API_VERSION},
            timeouts=timeouts or Timeouts(),
            retry=retry or RetryPolicy(),
            rate_limiter=shared_rate_limiter(f"Whop {base_url}", rate_limit),
        )
        self._member_emails: dict[str, str | None] = {}
        self.member_lookups = 0  # GET /members requests made to resolve membership emails

    def payments(self, window: TimeWindow | None = None) -> Iterator[Page]:
        return self.pages("payments", window)

    def memberships(self, window: TimeWindow | None = None) -> Iterator[Page]:
        return self.pages("memberships", window)

    def users(self, window: TimeWindow | None = None) -> Iterator[Page]:
        return self.pages("users", window)

    def pages(self, resource: str, window: TimeWindow | None = None) -> Iterator[Page]:
        """Every record of `resource` (created within `window`, if given), page by page.

        Records whose `created_at` cannot be parsed are kept (validation rejects them with a
        reason); the others are trimmed to the half-open window.
        """
        if resource not in RESOURCES:
            raise ValueError(f"unknown Whop resource {resource!r}; expected one of {RESOURCES}")
        path = f"/{resource}"
        params = self._base_params(window)
        guard = PageGuard(self.api, "GET", path)
        while True:
            payload = self.api.get(path, params=params, check=check_cursor_page)
            records, page_info = payload["data"], payload["page_info"]
            cursor = page_info.get("end_cursor") if page_info["has_next_page"] else None
            guard.check(cursor, (record.get("id") for record in records))
            page = records if window is None else in_window(records, "created_at", window)
            if page and resource == "memberships":
                page = self.with_member_emails(page)
            elif page and resource == "users":
                page = self.with_member_emails(page, user_field="id", only_without="email")
            if page:
                yield page
            if cursor is None:
                return
            params = {**params, "after": cursor}

    def with_member_emails(
        self,
        records: list[dict[str, Any]],
        *,
        user_field: str = "user_id",
        only_without: str | None = None,
    ) -> list[dict[str, Any]]:
        """The records (memberships: `user_id`; users: `id`), each with its user's address from
        their member record (None when Whop has none: an unclaimed membership, a business
        buyer, no email scope). `only_without`: leave records that already carry that field
        (a user's own `email`, filled on the `me` view) as they are."""

        def wanted(record: dict[str, Any]) -> bool:
            return isinstance(record.get(user_field), str) and not (
                only_without and record.get(only_without)
            )

        emails = self.member_emails(record[user_field] for record in records if wanted(record))
        return [with_member_email(r, emails, user_field, only_without) for r in records]

    def member_emails(self, user_ids: Iterable[str]) -> dict[str, str | None]:
        """Each user's address on their member record, looked up `MEMBER_BATCH` at a time and
        cached for the client's life; None for a user without a member or an address."""
        wanted = list(dict.fromkeys(user_ids))
        missing = [user_id for user_id in wanted if user_id not in self._member_emails]
        for start in range(0, len(missing), MEMBER_BATCH):
            self._look_up_members(missing[start : start + MEMBER_BATCH])
        return {user_id: self._member_emails[user_id] for user_id in wanted}

    def _look_up_members(self, user_ids: list[str]) -> None:
        batch = set(user_ids)
        params: dict[str, Any] = {"user_ids": user_ids, "first": MEMBER_BATCH}
        if self.company_id:
            params["account_id"] = self.company_id
        guard = PageGuard(self.api, "GET", "/members")
        while True:
            payload = self.api.get("/members", params=params, check=check_cursor_page)
            self.member_lookups += 1
            for user_id, email in member_email_index(payload["data"]).items():
                if user_id in batch and self._member_emails.get(user_id) is None:
                    self._member_emails[user_id] = email
            page_info = payload["page_info"]
            cursor = page_info.get("end_cursor") if page_info["has_next_page"] else None
            guard.check(cursor, (member.get("id") for member in payload["data"]))
            if cursor is None:
                break
            params = {**params, "after": cursor}
        for user_id in user_ids:
            self._member_emails.setdefault(user_id, None)

    def feed(self, resource: str) -> WhopFeed:
        return WhopFeed(self, resource)

    def lookup_metadata(self) -> dict[str, int]:
        """For the run's figures (its log and run-level observation): the members lookups
        this client made."""
        return {
            "member_lookup_requests": self.member_lookups,
            "member_users_resolved": sum(1 for email in self._member_emails.values() if email),
            "member_users_without_email": sum(
                1 for email in self._member_emails.values() if not email
            ),
        }

    def _base_params(self, window: TimeWindow | None) -> dict[str, Any]:
        params: dict[str, Any] = {"first": self.page_size}
        if self.company_id:
            params["account_id"] = self.company_id
        if window is not None:
            params["created_after"] = (window.start - WINDOW_SLACK).isoformat()
            params["created_before"] = window.end.isoformat()
        return params


class WhopFeed:
    """One Whop resource (payments, memberships, users) read day by day for one run: what the
    generic API builder runs for each of Whop's feeds (spec.py's `open_feed`)."""

    def __init__(self, client: WhopClient, resource: str) -> None:
        self.client, self.resource = client, resource

    def day(self, window: TimeWindow) -> Iterator[Page]:
        return self.client.pages(self.resource, window)

    def reported(self, window: TimeWindow) -> None:
        return None  # Whop's cursor API reports no totals

    def run_figures(self) -> dict[str, int | float]:
        """HTTP counters, and the members lookups that gave memberships and users emails."""
        figures: dict[str, int | float] = dict(self.client.counters.as_metadata())
        if self.resource in ("memberships", "users"):
            figures.update(self.client.lookup_metadata())
        return figures

    def close(self) -> None:
        self.client.close()


def open_feed(settings: Mapping[str, str], feed: str) -> WhopFeed:
    """A feed's reader from its connection settings (api_key, base_url; optional company_id,
    retry_attempts, retry_backoff_s)."""
    client = WhopClient(
        settings["api_key"],
        base_url=settings.get("base_url") or WHOP_V1_URL,
        company_id=settings.get("company_id") or None,
        retry=RetryPolicy.from_settings(settings),
    )
    return client.feed(feed.removeprefix("whop_"))
