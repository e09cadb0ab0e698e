"""The JSON API client core against a real Starlette server over 127.0.0.1."""

from __future__ import annotations

import math
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise

import pytest

from costudy_pipelines.lib.clients.http import (
    ApiError,
    JsonApiClient,
    MalformedResponseError,
    PageGuard,
    RateLimit,
    RateLimiter,
    RepeatedPageError,
    RetryPolicy,
    Timeouts,
    parse_retry_after,
    shared_rate_limiter,
)
from costudy_pipelines_tests.lib.clients.live import Script, answer, hang, serve

TOKEN = "sk_live_" + "Q" * 24
FAST = RetryPolicy(max_attempts=4, initial_backoff_s=0.05, max_backoff_s=0.2, max_elapsed_s=10)
OK = answer(200, {"data": [1, 2, 3]})


def client_for(base_url: str, **options: object) -> JsonApiClient:
    options.setdefault("retry", FAST)
    return JsonApiClient("TestAPI", base_url, token=TOKEN, **options)  # type: ignore[arg-type]


def gaps(script: Script) -> list[float]:
    times = [hit.at for hit in script.hits]
    return [later - earlier for earlier, later in pairwise(times)]


def test_429_with_retry_after_seconds_is_waited_out_then_succeeds() -> None:
    script = Script(
        answer(429, {"message": "You are being rate limited"}, {"Retry-After": "1"}), OK
    )
    with serve(script.app()) as url, client_for(url) as client:
        assert client.get("/items") == {"data": [1, 2, 3]}
        counters = client.counters
    assert len(script.hits) == 2
    assert gaps(script)[0] >= 0.95
    assert (counters.requests, counters.retries, counters.rate_limited) == (2, 1, 1)
    assert script.hits[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_retry_after_ms_is_preferred_and_pauses_every_client_of_the_api() -> None:
    script = Script(answer(429, {}, {"retry-after-ms": "400", "Retry-After": "30"}), OK)
    limiter = RateLimiter(RateLimit(requests=1000, per_seconds=1.0))
    with serve(script.app()) as url:
        first = client_for(url, rate_limiter=limiter)
        second = client_for(url, rate_limiter=limiter)
        done = threading.Event()
        worker = threading.Thread(target=lambda: (first.get("/items"), done.set()))
        worker.start()
        while not script.hits:  # the 429 has arrived: the shared limiter is paused
            time.sleep(0.005)
        time.sleep(0.05)
        second.get("/items")
        worker.join()
        first.close()
        second.close()
    assert done.is_set()
    assert len(script.hits) == 3
    # Both the retry and the other client's request waited ~0.4 s (not the 30 s Retry-After).
    assert all(0.38 <= hit.at - script.hits[0].at < 2 for hit in script.hits[1:])


def test_server_errors_are_retried_until_success() -> None:
    script = Script(answer(503, "unavailable"), answer(502, "bad gateway"), OK)
    with serve(script.app()) as url, client_for(url) as client:
        assert client.get("/items") == {"data": [1, 2, 3]}
        assert (client.counters.server_errors, client.counters.retries) == (2, 2)
    assert len(script.hits) == 3


def test_retry_cap_gives_a_clear_error_without_secrets() -> None:
    script = Script(answer(503, f"upstream exploded; your key {TOKEN} was fine"))
    with serve(script.app()) as url, client_for(url) as client, pytest.raises(ApiError) as caught:
        client.get("/items", params={"cursor": "abc", "api_key": TOKEN})
    message = str(caught.value)
    assert len(script.hits) == FAST.max_attempts
    assert "TestAPI GET /items?cursor=abc&api_key=***" in message
    assert "HTTP 503 after 4 attempt(s)" in message
    assert "upstream exploded" in message
    assert TOKEN not in message
    assert caught.value.status == 503


def test_retry_budget_in_time_fails_at_once_when_the_server_asks_for_too_long() -> None:
    script = Script(answer(429, {}, {"Retry-After": "60"}))
    policy = RetryPolicy(max_attempts=5, max_elapsed_s=5)
    with serve(script.app()) as url, client_for(url, retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(ApiError, match=r"HTTP 429 .* the server asked to wait 60\.0 s"):
            client.get("/items")
    assert time.monotonic() - started < 2
    assert len(script.hits) == 1


def test_client_errors_fail_at_once_with_a_hint() -> None:
    script = Script(answer(401, {"message": "invalid api key"}))
    with (
        serve(script.app()) as url,
        client_for(url) as client,
        pytest.raises(ApiError, match=r"HTTP 401 \(check the API credentials\)") as caught,
    ):
        client.get("/items")
    assert caught.value.status == 401
    assert len(script.hits) == 1


def test_a_hanging_server_times_out_and_is_retried() -> None:
    script = Script(hang(1.0), OK)
    timeouts = Timeouts(connect_s=1.0, read_s=0.3)
    with serve(script.app()) as url, client_for(url, timeouts=timeouts) as client:
        started = time.monotonic()
        assert client.get("/items") == {"data": [1, 2, 3]}
        assert time.monotonic() - started < 0.9
        assert (client.counters.timeouts, client.counters.retries) == (1, 1)


def test_invalid_json_is_retried_once_then_fails_clearly() -> None:
    script = Script(answer(200, "<html>maintenance</html>"))
    with serve(script.app()) as url, client_for(url) as client:
        with pytest.raises(MalformedResponseError, match=r"invalid JSON .*<html>maintenance"):
            client.get("/items")
        assert client.counters.malformed == 2
    assert len(script.hits) == 2


def test_one_malformed_answer_is_survived() -> None:
    script = Script(answer(200, '{"data": [1, 2'), OK)
    with serve(script.app()) as url, client_for(url) as client:
        assert client.get("/items") == {"data": [1, 2, 3]}


def test_bodies_the_fast_parser_refuses_are_read_like_the_standard_library() -> None:
    """Big integers, NaN and UTF-16 bodies are valid for Python's json: not malformed."""
    big = 2**70
    utf16 = '{"data": ["Zoë"]}'.encode("utf-16")
    script = Script(
        answer(200, f'{{"data": [{big}, 1.5]}}'),
        answer(200, '{"data": [NaN]}'),
        answer(200, utf16),
    )
    with serve(script.app()) as url, client_for(url) as client:
        assert client.get("/items") == {"data": [big, 1.5]}
        assert math.isnan(client.get("/items")["data"][0])
        assert client.get("/items") == {"data": ["Zoë"]}
        assert client.counters.malformed == 0


def test_wrong_envelope_is_a_malformed_response() -> None:
    def needs_data(payload: object) -> str | None:
        ok = isinstance(payload, dict) and isinstance(payload.get("data"), list)
        return None if ok else "'data' is not a list"

    script = Script(answer(200, {"items": []}))
    with (
        serve(script.app()) as url,
        client_for(url) as client,
        pytest.raises(MalformedResponseError, match="unexpected response shape: 'data'"),
    ):
        client.get("/items", check=needs_data)


def test_connection_refused_is_retried_then_named() -> None:
    with serve(Script(OK).app()) as url:
        pass  # the port is free again: nothing listens there now
    with client_for(url) as client, pytest.raises(ApiError, match="connection failed"):
        client.get("/items")
    assert client.counters.requests == FAST.max_attempts


def test_shared_rate_limiter_spaces_requests_of_every_client_measured_by_the_server() -> None:
    limit = RateLimit(requests=4, per_seconds=0.4)  # one request per 0.1 s
    key = f"test-api-{uuid.uuid4()}"
    script = Script(OK)
    with serve(script.app()) as url:
        clients = [client_for(url, rate_limiter=shared_rate_limiter(key, limit)) for _ in range(2)]
        workers = [
            threading.Thread(target=lambda c=c: [c.get("/items") for _ in range(6)])
            for c in clients
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    times = sorted(hit.at for hit in script.hits)
    assert len(times) == 12
    # Unthrottled, these would arrive about a millisecond apart; the slack is for a busy CPU.
    assert min(b - a for a, b in pairwise(times)) >= 0.05
    for start in times:  # no 0.4 s window (less the slack) holds more than 4 requests
        assert sum(start <= t < start + 0.35 for t in times) <= 4
    assert times[-1] - times[0] >= 1.0
    with pytest.raises(ValueError, match="already exists"):
        shared_rate_limiter(key, RateLimit(requests=5, per_seconds=0.4))


def test_rate_limiter_burst_then_steady_rate_stays_inside_the_window() -> None:
    limiter = RateLimiter(RateLimit(requests=5, per_seconds=0.25, burst=3))
    times = []
    for _ in range(9):
        limiter.acquire()
        times.append(time.monotonic())
    assert times[2] - times[0] < 0.05  # the burst goes back to back
    for start in times:
        assert sum(start <= t < start + 0.24 for t in times) <= 5


def test_page_guard_stops_a_cursor_that_does_not_advance() -> None:
    client = JsonApiClient("TestAPI", "http://127.0.0.1:9")
    guard = PageGuard(client, "GET", "/items")
    guard.check("c1", ["a", "b"])
    guard.check("c2", ["c", "d"])
    with pytest.raises(RepeatedPageError, match="page 3: the cursor did not advance \\('c1'"):
        guard.check("c1", ["e", "f"])
    other = PageGuard(client, "GET", "/items")
    other.check(1, ["a", "b"])
    with pytest.raises(RepeatedPageError, match=r"the same page of 2 record\(s\) came twice"):
        other.check(2, ["a", "b"])
    client.close()


def test_parse_retry_after_variants() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    http_date = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": http_date}, now=now) == 7.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_error_messages_keep_the_body_structure_but_no_personal_data() -> None:
    """A failing payments page must not put customers' e-mails, names or amounts in the log."""
    page = {
        "data": [
            {
                "id": "pay_1",
                "amount": 42.5,
                "user": {"email": "anna@example.com", "name": "Anna Berg"},
            }
        ]
        * 3,
        "error": {"code": 4221, "message": "Refund of $12.00 to anna@example.com failed"},
    }
    script = Script(
        answer(422, page), answer(500, "<p>Payment by anna@example.com of 42.50 failed</p>")
    )
    messages = []
    with serve(script.app()) as url, client_for(url) as client:
        for _ in range(2):
            with pytest.raises(ApiError) as caught:
                client.get("/items")
            messages.append(str(caught.value))

    json_page, text_page = messages
    for message in messages:
        for personal in ("anna@example.com", "Anna", "Berg", "42.5", "12.00", "pay_1"):
            assert personal not in message.replace("<p>Anna", "")
    assert '"user": {"email": "***", "name": "***"}' in json_page
    assert '"... 1 more"' in json_page  # lists are shortened, their length still shown
    assert '"code": 4221, "message": "Refund of # to <email> failed"' in json_page
    assert "<p>Payment by <email> of # failed</p>" in text_page  # a gateway's page: words kept
