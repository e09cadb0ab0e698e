"""Whop v1 cursor pagination against a minimal server shaped like the real API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.clients.http import (
    ApiError,
    MalformedResponseError,
    RepeatedPageError,
    RetryPolicy,
)
from costudy_pipelines.sources.whop.client import WhopClient
from costudy_pipelines.sources.whop.records import RESOLVED_KEY
from costudy_pipelines_tests.lib.clients.live import Recorder, serve

KEY = "whop_test_key_" + "x" * 16
DAY = TimeWindow.day("2025-03-02")
FAST = RetryPolicy(max_attempts=2, initial_backoff_s=0.01, max_backoff_s=0.05)


def payment(number: int, created: datetime) -> dict[str, Any]:
    # Both money variants of the v1 SDK releases: float, and the Money object.
    usd = 10.5 + number if number % 2 else {"amount": f"{10 + number}.50", "currency": "usd"}
    return {
        "id": f"pay_{number:03d}",
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "status": "paid",
        "usd_total": usd,
        "user": {"id": f"user_{number}", "email": f"Person{number}@Example.com"},
    }


def payments() -> list[dict[str, Any]]:
    start = DAY.start - timedelta(hours=12)
    records = [payment(n, start + timedelta(hours=2 * n)) for n in range(24)]
    records.append(payment(90, DAY.start))  # exactly at the window's start: inside
    records.append(payment(91, DAY.end))  # exactly at its end: outside
    return sorted(records, key=lambda r: (r["created_at"], r["id"]))


def whop_app(data: dict[str, list[dict[str, Any]]], recorder: Recorder, stuck: bool = False):
    """v1 list endpoints; created_after is exclusive and created_before inclusive here, the
    least convenient reading of the undocumented semantics."""

    async def list_resource(request: Request) -> Response:
        await recorder.record(request)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
        query = request.query_params
        first = int(query.get("first", "10"))
        if first > 100:
            return JSONResponse({"error": {"message": "first must be <= 100"}}, status_code=422)
        rows = data[request.path_params["resource"]]
        if "created_after" in query:
            after = datetime.fromisoformat(query["created_after"])
            rows = [r for r in rows if datetime.fromisoformat(r["created_at"]) > after]
        if "created_before" in query:
            before = datetime.fromisoformat(query["created_before"])
            rows = [r for r in rows if datetime.fromisoformat(r["created_at"]) <= before]
        offset = 0 if stuck else int(query.get("after", "c0")[1:])
        page = rows[offset : offset + first]
        more = offset + first < len(rows)
        return JSONResponse(
            {
                "data": page,
                "page_info": {
                    "end_cursor": f"c{offset + first}" if more else None,
                    "start_cursor": f"c{offset}",
                    "has_next_page": more,
                    "has_previous_page": offset > 0,
                },
            }
        )

    return Starlette(routes=[Route("/api/v1/{resource}", list_resource)])


def read(url: str, resource: str = "payments", window: TimeWindow | None = None, **options: Any):
    with WhopClient(KEY, base_url=f"{url}/api/v1", retry=FAST, **options) as client:
        pages = list(client.pages(resource, window))
    return pages, client.counters


def test_pages_to_the_end_with_records_unchanged() -> None:
    data, recorder = {"payments": payments()}, Recorder()
    with serve(whop_app(data, recorder)) as url:
        pages, counters = read(url, page_size=7)
    assert [len(page) for page in pages] == [7, 7, 7, 5]
    assert [record for page in pages for record in page] == data["payments"]
    assert [hit.params.get("after") for hit in recorder.hits] == [None, "c7", "c14", "c21"]
    assert counters.requests == 4 and counters.bytes_received > 0


def test_a_daily_window_yields_exactly_the_day() -> None:
    data, recorder = {"payments": payments()}, Recorder()
    with serve(whop_app(data, recorder)) as url:
        pages, _ = read(url, window=DAY, page_size=5)
    got = [record["id"] for page in pages for record in page]
    expected = [
        r["id"] for r in data["payments"] if DAY.contains(datetime.fromisoformat(r["created_at"]))
    ]
    assert got == expected
    assert "pay_090" in got and "pay_091" not in got
    assert len(got) == 13
    assert recorder.hits[0].params["created_before"] == DAY.end.isoformat()


def test_memberships_and_users_use_their_own_endpoints() -> None:
    member = {"id": "mem_1", "created_at": "2025-03-02T10:00:00Z", "user_id": "user_1"}
    user = {"id": "user_1", "created_at": "2025-03-01T10:00:00Z", "email": "a@b.co"}
    buyer = {"id": "mber_1", "user": {"id": "user_1"}, "email": "A@b.co"}
    data = {"memberships": [member], "users": [user], "members": [buyer]}
    recorder = Recorder()
    with serve(whop_app(data, recorder)) as url, WhopClient(KEY, base_url=f"{url}/api/v1") as c:
        # a 2.6.0 membership has no address: its buyer's comes from the members endpoint
        resolved = {**member, RESOLVED_KEY: {"member_email": "A@b.co", "member_user_id": "user_1"}}
        assert list(c.memberships(DAY)) == [[resolved]]
        assert list(c.users()) == [[user]]
        assert c.lookup_metadata()["member_lookup_requests"] == 1
    assert [hit.path for hit in recorder.hits] == [
        "/api/v1/memberships",
        "/api/v1/members",
        "/api/v1/users",
    ]
    assert recorder.hits[1].params.get("user_ids") == "user_1"


def test_a_cursor_that_does_not_advance_stops_with_a_clear_error() -> None:
    recorder = Recorder()
    with (
        serve(whop_app({"payments": payments()}, recorder, stuck=True)) as url,
        pytest.raises(RepeatedPageError, match="Whop GET /payments: page 2"),
    ):
        read(url, page_size=5)
    assert len(recorder.hits) == 2


def test_a_wrong_key_is_refused_without_showing_it() -> None:
    with (
        serve(whop_app({"payments": []}, Recorder())) as url,
        WhopClient("wrong-key-123", base_url=f"{url}/api/v1") as client,
        pytest.raises(ApiError, match=r"Whop GET /payments.*HTTP 401") as caught,
    ):
        list(client.payments())
    assert "wrong-key-123" not in str(caught.value)


def test_a_page_without_the_envelope_is_malformed() -> None:
    async def broken(request: Request) -> Response:
        return JSONResponse({"data": {"oops": 1}, "page_info": {"has_next_page": False}})

    app = Starlette(routes=[Route("/api/v1/payments", broken)])
    with serve(app) as url, pytest.raises(MalformedResponseError, match="'data' is not a list"):
        read(url)
