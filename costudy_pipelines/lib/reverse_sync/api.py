"""The API strategy: each event written through the platform's HTTP API, safely retried.

A new event is created: `POST {path}`. A create is not idempotent, so it may only be retried
because it carries an `Idempotency-Key` derived from (event type, source id, fingerprint):
sending it again, after a timeout, a 5xx or a crash that lost the answer, makes the platform
answer the first result instead of creating twice.

An edited event whose record exists (the tracking table holds its id) updates that record:
`PATCH {path}/{id}` with the fields the sync owns, as the direct strategy's upsert sets only
its mapped columns; what the platform's users set on the record (a lead's status) stays. Setting
the same fields to the same values twice leaves the same record, so an update is retried
without a key; a key per content would even be wrong, since an event edited back to an earlier
content must be applied again, not answered from the platform's memory of the first time.
A 404 (the record was deleted on the platform) is a dead letter like any other 4xx: the sync
does not create it again behind the platform's back.

Requests are paced client-side (the platform's limit is per token, shared by every run), 429
and 5xx are retried honouring `retry-after-ms` / `Retry-After`, transport errors and timeouts
with exponential backoff. Errors name the method, path and status, never the token.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Self
from urllib.parse import quote

import httpx

from costudy_pipelines.lib.clients.http import parse_retry_after
from costudy_pipelines.lib.reverse_sync.events import EventType

# Paths per kind under the API's root URL (PLATFORM_API_URL, e.g. https://host/api/v1); the
# sandbox's PlatformApiServer serves the same.
API_PATHS: dict[str, str] = {
    "leads": "/leads",
    "engagements": "/engagements",
    "mailing_list": "/mailing-list/subscribers",
    "support_tickets": "/support-tickets",
}


class PlatformApiError(RuntimeError):
    """The API refused us as a whole (bad token, wrong URL): no event can land, the run stops."""


@dataclass(frozen=True)
class ApiSettings:
    base_url: str  # the API's root, e.g. https://platform.example.com/api/v1
    token: str
    requests_per_second: float = 20.0
    timeout_s: float = 10.0
    max_attempts: int = 5  # per event and run, before the event counts as failed
    initial_backoff_s: float = 0.25
    max_backoff_s: float = 10.0
    max_retry_after_s: float = 60.0  # a longer wait asked by the server fails the event now

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("PLATFORM_API_URL must be an http:// or https:// URL")
        if not self.token:
            raise ValueError("PLATFORM_API_TOKEN is empty")
        if self.requests_per_second <= 0 or self.max_attempts < 1:
            raise ValueError("requests_per_second must be > 0 and max_attempts >= 1")


@dataclass(frozen=True)
class ApiResult:
    """One create or update: the record's id, or the error after the attempts this run allows."""

    target_id: str | None
    error: str | None = None
    retryable: bool = False
    status: int | None = None
    replayed: bool = False
    attempts: int = 1


def idempotency_key(event: EventType, source_id: str, fingerprint: str) -> str:
    """The same event with the same content is the same request, in every run and process."""
    return hashlib.sha256(f"{event.name}\n{source_id}\n{fingerprint}".encode()).hexdigest()


class Pacer:
    """At most `rate` requests per second from this client (evenly spaced, thread-safe)."""

    def __init__(
        self, rate: float, *, clock: Callable[[], float] = time.monotonic, sleep=time.sleep
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            self._sleep(slot - now)


class PlatformApiClient:
    def __init__(self, settings: ApiSettings, *, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self._sleep = sleep
        self._pacer = Pacer(settings.requests_per_second, sleep=sleep)
        self._root = httpx.URL(settings.base_url).path.rstrip("/")  # for messages
        self._http = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {settings.token}", "Accept": "application/json"},
            timeout=settings.timeout_s,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.max_backoff_s, self.settings.initial_backoff_s * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def create(self, kind: str, body: dict[str, Any], key: str) -> ApiResult:
        """POST one create with its idempotency key, retrying what may succeed on a retry."""
        return self._send("POST", API_PATHS[kind], body, {"Idempotency-Key": key})

    def update(self, kind: str, target_id: str, body: dict[str, Any]) -> ApiResult:
        """PATCH the fields in `body` of the existing record `target_id`, retried like a create
        (no key: the same update applied twice leaves the same record)."""
        path = f"{API_PATHS[kind]}/{quote(target_id, safe='')}"
        return self._send("PATCH", path, body, {})

    def _send(
        self, method: str, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> ApiResult:
        for attempt in range(1, self.settings.max_attempts + 1):
            self._pacer.wait()
            result, wait = self._attempt(method, path, body, headers, attempt)
            if not result.retryable or attempt == self.settings.max_attempts:
                return result
            delay = self._backoff(attempt) if wait is None else wait
            if delay > self.settings.max_retry_after_s:
                return replace(result, error=f"{result.error} (asked to wait {delay:.0f}s)")
            self._sleep(delay)
        raise AssertionError("unreachable: the last attempt returns")

    def _attempt(
        self, method: str, path: str, body: dict[str, Any], headers: dict[str, str], attempt: int
    ) -> tuple[ApiResult, float | None]:
        """One attempt, and the wait the server asked for before the next one."""
        shown = f"{method} {self._root}{path}"
        try:
            response = self._http.request(method, path, json=body, headers=headers)
        except httpx.TransportError as exc:  # timeouts, refused or dropped connections
            return ApiResult(
                None, f"{shown}: {type(exc).__name__}", True, None, attempts=attempt
            ), None
        status = response.status_code
        if status in (401, 403):
            raise PlatformApiError(
                f"{shown} answered {status}: the platform refused the token "
                "(check PLATFORM_API_TOKEN and PLATFORM_API_URL)"
            )
        if response.is_success:
            return _landed(response, shown, attempt), None
        retryable = status == 429 or status >= 500
        error = f"{shown} answered {status}: {_message(response)}"
        return ApiResult(None, error, retryable, status, attempts=attempt), (
            parse_retry_after(response.headers) if retryable else None
        )


def _landed(response: httpx.Response, shown: str, attempts: int) -> ApiResult:
    replayed = response.headers.get("idempotent-replayed") == "true"
    try:
        target_id = response.json()["id"]
    except (ValueError, KeyError, TypeError):
        # The write may have happened: retrying (a create with the same key) is safe and gets
        # the answer.
        error = f"{shown}: answer without an id"
        return ApiResult(None, error, True, response.status_code, attempts=attempts)
    return ApiResult(
        str(target_id), status=response.status_code, replayed=replayed, attempts=attempts
    )


def _message(response: httpx.Response) -> str:
    """The API's own error message (its `error.message`), or the start of the body."""
    try:
        return str(response.json()["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase
