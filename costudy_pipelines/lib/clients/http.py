"""The JSON API client core every HTTP source shares (Whop, GoHighLevel, ...).

One place for what makes API reads robust: timeouts, retries with backoff that honour the
server's `retry-after-ms` / `Retry-After`, a per-API rate limiter shared by every client in the
process, malformed-response and repeated-page detection, and counters for asset metadata.
Errors name the API, method, path and status, never a header or a token.

Retries assume the request is a read (GET, or a search POST): safe to send twice.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from hashlib import blake2b
from typing import Any, Self
from urllib.parse import urlencode

import httpx
import orjson

from costudy_pipelines.lib.clients.base import TimeWindow

# Query parameters whose values must never appear in an error message.
SECRET_PARAM_WORDS = ("key", "token", "secret", "password", "auth")
BODY_EXCERPT_CHARS = 300
# Keys of an error body whose text says what went wrong: kept (emails and numbers masked).
# Every other value is masked: a failing payments page must not put customers in the event log.
DIAGNOSTIC_KEYS = frozenset(
    {"error", "errors", "message", "msg", "code", "type", "status", "statusCode", "title"}
    | {"detail", "details", "reason", "error_description", "error_code"}
)
MASK = "***"
LIST_ITEMS_SHOWN = 2
_EMAIL = re.compile(r"[^\s@\"'<>(),;:]+@[^\s@\"'<>(),;:]+")
_NUMBER = re.compile(r"[$€£¥]?\d[\d,.]*")


class ApiError(RuntimeError):
    """An API call that failed for good: the message names API, method, path and status."""

    def __init__(
        self, message: str, *, api: str, method: str, path: str, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.api = api
        self.method = method
        self.path = path
        self.status = status


class MalformedResponseError(ApiError):
    """A 2xx answer that is not JSON or not the documented envelope (after one retry)."""


class RepeatedPageError(ApiError):
    """A paginator that stopped advancing: the same cursor or the same page came back."""


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 5.0
    read_s: float = 30.0

    def as_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_s, connect=self.connect_s, pool=self.connect_s)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry: attempts and total seconds are both capped.

    Without a server hint the delay is exponential with jitter (half fixed, half random, so
    parallel workers spread out). A server hint (`retry-after-ms`, `Retry-After`) is honoured
    as the minimum wait; a hint longer than the remaining budget fails at once.
    """

    max_attempts: int = 6
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_elapsed_s: float = 300.0
    malformed_retries: int = 1

    def start(self) -> RetryBudget:
        return RetryBudget(self)

    def backoff(self, failures: int) -> float:
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (failures - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> RetryPolicy:
        """From a source's connection settings: `retry_attempts`, `retry_backoff_s` if set."""
        return cls(
            max_attempts=int(settings.get("retry_attempts") or cls.max_attempts),
            initial_backoff_s=float(settings.get("retry_backoff_s") or cls.initial_backoff_s),
        )


class RetryBudget:
    """The attempts and time one logical request has used so far."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.attempts = 0
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def next_delay(self, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt, or None when the budget is spent."""
        if self.attempts >= self.policy.max_attempts:
            return None
        if retry_after is None:
            delay = self.policy.backoff(self.attempts)
        else:
            delay = retry_after * (1 + random.uniform(0, 0.1))
        if self.elapsed() + delay > self.policy.max_elapsed_s:
            return None
        return delay


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms` first, then `Retry-After`.

    `Retry-After` may be delta-seconds or an HTTP date (RFC 9110); anything else is ignored.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` in any `per_seconds` window; `burst` of them may go back to back."""

    requests: int
    per_seconds: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.requests < 1 or self.per_seconds <= 0 or not 1 <= self.burst <= self.requests:
            raise ValueError(f"invalid rate limit {self!r}: need 1 <= burst <= requests, per > 0")

    def share(self, parts: int) -> RateLimit:
        """What each of `parts` processes calling the API at once may send: together, never
        more than the limit. A share is rounded down and leaves one request of each window
        free (never below one): the processes cannot see each other's sends, and requests
        sent in step arrive with jitter (measured: with exact shares, 2 of 62 arrived over a
        sandbox's enforced limit; test_api_share)."""
        if parts <= 1:
            return self
        requests = max(1, self.requests // parts - 1)
        return RateLimit(requests, self.per_seconds, max(1, min(self.burst // parts, requests)))


# How many processes may call one API at once: a Dagster step sets it to its pool's slots
# (defs/_source_assets.py), so the steps of that pool share each API's limit between them
# instead of each taking all of it (every process has its own limiters).
_api_share = 1


def set_api_share(parts: int) -> None:
    global _api_share
    _api_share = max(1, parts)


def api_share() -> int:
    return _api_share


class RateLimiter:
    """A thread-safe token bucket (as GCRA: one 'theoretical arrival time' instead of a count).

    The emission interval is chosen so that the burst plus the refill over one window never
    exceeds `requests` per `per_seconds`, or this process's share of them (`api_share`).
    `pause_for` stops every user of this limiter, e.g. after a 429 or when rate-limit headers
    say the quota is nearly used up.
    """

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._next_free = 0.0
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a slot; return the seconds waited."""
        share = self.limit.share(api_share())
        interval = share.per_seconds / (share.requests - share.burst + 1)
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_free - (share.burst - 1) * interval, self._paused_until)
            self._next_free = max(self._next_free, slot) + interval
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return max(wait, 0.0)

    def pause_for(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)


_shared_limiters: dict[str, RateLimiter] = {}
_shared_limiters_lock = threading.Lock()


def shared_rate_limiter(key: str, limit: RateLimit) -> RateLimiter:
    """The one limiter for `key` (an API, or an API and account) in this process."""
    with _shared_limiters_lock:
        limiter = _shared_limiters.get(key)
        if limiter is None:
            limiter = _shared_limiters[key] = RateLimiter(limit)
        elif limiter.limit != limit:
            raise ValueError(
                f"rate limiter {key!r} already exists with {limiter.limit}, not {limit}: "
                "every client of one API must be configured with the same limit"
            )
        return limiter


@dataclass
class ApiCounters:
    """What a sync did on the wire; `as_metadata()` is the run's (its log and run-level
    observation), never a day partition's figures."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0
    malformed: int = 0
    bytes_received: int = 0
    waited_s: float = 0.0

    def as_metadata(self) -> dict[str, int | float]:
        values = asdict(self)
        values["waited_s"] = round(self.waited_s, 3)
        return values


@dataclass
class AttemptFailure:
    """One failed attempt that may be retried; `malformed` ones are retried only once."""

    reason: str
    status: int | None = None
    body: str = ""
    retry_after: float | None = None
    malformed: bool = False
    # who set retry_after: the server's hint, unless the client knows the wait itself
    wait_from: str = "the server asked"

    def summary(self, budget: RetryBudget) -> str:
        waited = ""
        if self.retry_after is not None:
            waited = f"; {self.wait_from} to wait {self.retry_after:.1f} s"
        body = f": {self.body}" if self.body else ""
        return (
            f"{self.reason} after {budget.attempts} attempt(s) in {budget.elapsed():.1f} s"
            f"{waited}{body}"
        )


def status_failure(
    status: int, headers: Mapping[str, str], counters: ApiCounters
) -> AttemptFailure | None:
    """A retryable failure for 429 (rate limited) and 5xx answers, counted; None otherwise."""
    if status != 429 and status < 500:
        return None
    if status == 429:
        counters.rate_limited += 1
    else:
        counters.server_errors += 1
    return AttemptFailure(f"HTTP {status}", status, retry_after=parse_retry_after(headers))


def retry_loop(
    attempt: Callable[[], Any],
    policy: RetryPolicy,
    counters: ApiCounters,
    give_up: Callable[[AttemptFailure, RetryBudget], Exception],
) -> Any:
    """Call `attempt` until it returns something other than an AttemptFailure.

    Stops with `give_up(...)` when the budget is spent or a second malformed answer arrives.
    """
    budget = policy.start()
    malformed = 0
    while True:
        budget.attempts += 1
        outcome = attempt()
        if not isinstance(outcome, AttemptFailure):
            return outcome
        malformed += outcome.malformed
        delay = budget.next_delay(outcome.retry_after)
        if delay is None or malformed > policy.malformed_retries:
            raise give_up(outcome, budget)
        counters.retries += 1
        counters.waited_s += delay
        time.sleep(delay)


# A check returns a description of what is wrong with a parsed body, or None when it is fine.
EnvelopeCheck = Callable[[Any], str | None]


@dataclass
class JsonApiClient:
    """Reads JSON from one API over httpx, with retries, rate limiting and counters.

    `token` is sent as `Authorization: Bearer <token>` and kept out of every message.
    `on_response` sees every HTTP response (e.g. to read rate-limit headers).
    """

    api: str
    base_url: str
    token: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limiter: RateLimiter | None = None
    on_response: Callable[[httpx.Response], None] | None = None
    counters: ApiCounters = field(default_factory=ApiCounters)

    def __post_init__(self) -> None:
        headers = {"Accept": "application/json", "User-Agent": "costudy-pipelines"}
        headers.update(self.headers)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=self.timeouts.as_httpx()
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JsonApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        check: EnvelopeCheck | None = None,
    ) -> Any:
        return self.request("GET", path, params=params, check=check)

    def post(self, path: str, *, json: Any = None, check: EnvelopeCheck | None = None) -> Any:
        return self.request("POST", path, json=json, check=check)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        check: EnvelopeCheck | None = None,
    ) -> Any:
        """The parsed JSON body of a 2xx answer, retrying what is worth retrying."""

        def give_up(failure: AttemptFailure, budget: RetryBudget) -> ApiError:
            kind = MalformedResponseError if failure.malformed else ApiError
            return kind(
                f"{self.describe(method, path, params)}: {failure.summary(budget)}",
                api=self.api,
                method=method,
                path=path,
                status=failure.status,
            )

        return retry_loop(
            lambda: self._attempt(method, path, params, json, check),
            self.retry,
            self.counters,
            give_up,
        )

    def describe(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> str:
        """`API METHOD path?query` with secret-looking query values masked."""
        where = f"{self.api} {method} {path}"
        if params:
            shown = {
                name: "***" if any(word in name.lower() for word in SECRET_PARAM_WORDS) else value
                for name, value in params.items()
                if value is not None
            }
            where += "?" + urlencode(shown, safe="*")
        return where

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        check: EnvelopeCheck | None,
    ) -> Any:
        if self.rate_limiter is not None:
            self.counters.waited_s += self.rate_limiter.acquire()
        self.counters.requests += 1
        try:
            response = self._http.request(method, path, params=params, json=json)
        except httpx.TimeoutException as exc:
            self.counters.timeouts += 1
            return AttemptFailure(f"timed out ({type(exc).__name__})")
        except httpx.TransportError as exc:
            return AttemptFailure(f"connection failed ({type(exc).__name__})")
        self.counters.bytes_received += len(response.content)
        if self.on_response is not None:
            self.on_response(response)
        return self._interpret(method, path, params, response, check)

    def _interpret(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        response: httpx.Response,
        check: EnvelopeCheck | None,
    ) -> Any:
        status = response.status_code
        failure = status_failure(status, response.headers, self.counters)
        if failure is not None:
            failure.body = self._excerpt(response)
            if status == 429 and self.rate_limiter is not None and failure.retry_after:
                self.rate_limiter.pause_for(failure.retry_after)
            return failure
        if status >= 400:
            hint = " (check the API credentials)" if status in (401, 403) else ""
            raise ApiError(
                f"{self.describe(method, path, params)}: HTTP {status}{hint}: "
                f"{self._excerpt(response)}",
                api=self.api,
                method=method,
                path=path,
                status=status,
            )
        try:
            payload = parse_json(response.content)
        except ValueError:
            problem: str | None = "invalid JSON"
        else:
            shape = check(payload) if check is not None else None
            problem = None if shape is None else f"unexpected response shape: {shape}"
        if problem is not None:
            self.counters.malformed += 1
            return AttemptFailure(problem, status, self._excerpt(response), malformed=True)
        return payload

    def _excerpt(self, response: httpx.Response) -> str:
        """The start of the body on one line, values masked, the token too should it be echoed."""
        content = response.content
        if self.token:  # before masking, which could cut the token into pieces left unmasked
            content = content.replace(self.token.encode(), MASK.encode())
        return masked_excerpt(content)


def _masked_text(text: str) -> str:
    return _NUMBER.sub("#", _EMAIL.sub("<email>", text))


def _masked(value: Any, *, keep: bool = False) -> Any:
    """The JSON value with its structure (keys, nesting, list lengths) and no personal data:
    strings and numbers become `***` unless under a diagnostic key, where only the emails and
    numbers in them are masked."""
    if isinstance(value, dict):
        return {key: _masked(item, keep=key in DIAGNOSTIC_KEYS) for key, item in value.items()}
    if isinstance(value, list):
        shown = [_masked(item, keep=keep) for item in value[:LIST_ITEMS_SHOWN]]
        hidden = len(value) - len(shown)
        return shown + ([f"... {hidden} more"] if hidden else [])
    if isinstance(value, str):
        return _masked_text(value) if keep else MASK
    if isinstance(value, bool) or value is None:
        return value
    return value if keep and isinstance(value, int) else MASK


def masked_excerpt(content: bytes) -> str:
    """Up to BODY_EXCERPT_CHARS of a response body for an error message, on one line.

    A JSON body keeps its structure with the values masked (see `_masked`); any other body
    (a gateway's or proxy's page, the APIs answer JSON) keeps its words, with e-mail addresses
    and numbers masked.
    """
    try:
        text = json.dumps(_masked(parse_json(content)), ensure_ascii=False)
    except (ValueError, RecursionError):
        text = _masked_text(content[: BODY_EXCERPT_CHARS * 4].decode("utf-8", "replace"))
    return " ".join(text.split())[:BODY_EXCERPT_CHARS] or "<empty body>"


def parse_json(body: bytes) -> Any:
    """A JSON document: orjson (~3x the standard library on API pages), or, for what it refuses
    and the standard library takes (NaN, integers beyond 64 bits, UTF-16), the standard library.
    Raises ValueError when neither can read it."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


class ApiReader:
    """Base of the per-API readers: owns one JsonApiClient, closes it, exposes its counters."""

    api: JsonApiClient

    @property
    def counters(self) -> ApiCounters:
        return self.api.counters

    def reported(self, window: TimeWindow) -> int | str | None:
        """The count the API reported for a window once read; None: it reports none."""
        return None

    def run_figures(self) -> Mapping[str, Any]:
        """The run's HTTP counters, for its log (not a day's figures)."""
        return self.counters.as_metadata()

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PageGuard:
    """Turns a paginator that stopped advancing into a clear error instead of an endless loop.

    `check` is called once per page with the cursor that page hands out and the ids on it:
    a cursor seen before, or a page with exactly the ids of an earlier page, is an error.
    """

    def __init__(self, client: JsonApiClient, method: str, path: str) -> None:
        self._client = client
        self._method = method
        self._path = path
        self._cursors: set[Hashable] = set()
        self._pages: set[bytes] = set()
        self.pages = 0

    def check(self, next_cursor: Hashable | None, ids: Iterable[object]) -> None:
        self.pages += 1
        if next_cursor is not None:
            if next_cursor in self._cursors:
                self._fail(f"the cursor did not advance ({next_cursor!r} was handed out before)")
            self._cursors.add(next_cursor)
        ids = tuple(ids)
        if ids and None not in ids:  # records without ids cannot be compared
            digest = blake2b(repr(ids).encode(), digest_size=16).digest()
            if digest in self._pages:
                self._fail(
                    f"the same page of {len(ids)} record(s) came twice (first id {ids[0]!r})"
                )
            self._pages.add(digest)

    def _fail(self, what: str) -> None:
        raise RepeatedPageError(
            f"{self._client.describe(self._method, self._path)}: page {self.pages}: {what}; "
            "stopping instead of looping",
            api=self._client.api,
            method=self._method,
            path=self._path,
        )
