from __future__ import annotations

import itertools
import json
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from costudy_pipelines.sandbox.servers import FaultPlan, RateLimit, WhopServer
from costudy_pipelines.sources.whop.client import VERSION_HEADER, WHOP_API_VERSION
from costudy_pipelines_tests.sandbox.servers.factory import (
    START,
    iso,
    whop_payments,
)


def collect(client: httpx.Client, collection: str, **params: Any) -> list[dict[str, Any]]:
    """Page to the end the way the SDK does: feed end_cursor back while has_next_page."""
    records: list[dict[str, Any]] = []
    while True:
        response = client.get(f"/api/v1/{collection}", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        records += page["data"]
        if not page["page_info"]["has_next_page"]:
            return records
        params["after"] = page["page_info"]["end_cursor"]


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_paging_to_the_end_returns_every_record_exactly_once_in_order(
    client: httpx.Client, payments: list[dict[str, Any]], direction: str
) -> None:
    served = collect(client, "payments", first=50, direction=direction)
    expected = payments if direction == "asc" else payments[::-1]
    assert served == expected  # same records, same order, money fields exactly as given


def test_default_page_is_newest_first_and_first_is_clamped(client: httpx.Client) -> None:
    default = client.get("/api/v1/payments").json()
    assert [p["id"] for p in default["data"]] == [f"pay_{n:05d}" for n in range(236, 226, -1)]
    assert default["page_info"]["has_next_page"] is True
    assert default["page_info"]["has_previous_page"] is False
    assert len(client.get("/api/v1/payments", params={"first": 5000}).json()["data"]) == 100


def test_created_windows_split_the_records_exactly(
    client: httpx.Client, payments: list[dict[str, Any]]
) -> None:
    """created_after is inclusive, created_before exclusive: adjacent days partition the data,
    including a payment created exactly at midnight."""
    days = [START + timedelta(days=d) for d in range(0, 12)]
    per_day = [
        collect(
            client,
            "payments",
            first=7,
            direction="asc",
            created_after=iso(a),
            created_before=iso(b),
        )
        for a, b in itertools.pairwise(days)
    ]
    midnight = [p for p in payments if p["created_at"].endswith("T00:00:00.000Z")]
    assert midnight  # the factory puts some payments exactly on a day boundary
    served_ids = [p["id"] for day in per_day for p in day]
    expected = [p["id"] for p in payments if days[0] <= _parse(p["created_at"]) < days[-1]]
    assert served_ids == expected
    assert len(per_day[0]) == 5  # every 5 hours from midnight: 0, 5, 10, 15, 20


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_backward_paging_with_last_and_before(client: httpx.Client, payments: list[dict]) -> None:
    page = client.get("/api/v1/payments", params={"direction": "asc", "last": 10}).json()
    assert [p["id"] for p in page["data"]] == [p["id"] for p in payments[-10:]]
    assert page["page_info"]["has_previous_page"] is True
    earlier = client.get(
        "/api/v1/payments",
        params={"direction": "asc", "last": 10, "before": page["page_info"]["start_cursor"]},
    ).json()
    assert [p["id"] for p in earlier["data"]] == [p["id"] for p in payments[-20:-10]]


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ({}, "/api/v1/payments"),
        ({"Authorization": "Bearer wrong"}, "/api/v1/users"),
        ({"Authorization": "Basic abc"}, "/api/v1/memberships"),
    ],
)
def test_missing_or_wrong_key_is_401_in_whops_error_shape(
    whop: WhopServer, headers: dict[str, str], path: str
) -> None:
    response = httpx.get(whop.base_url + path, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "unauthorized" and error["message"]


def test_v2_wrong_key_uses_the_v2_error_shape(whop: WhopServer) -> None:
    response = httpx.get(whop.base_url + "/api/v2/payments")
    assert response.status_code == 401
    assert response.json() == {"error": {"code": 401, "message": "Unauthorized"}}


def test_bad_parameters_are_400_and_say_what_is_wrong(client: httpx.Client) -> None:
    cases = {
        "after": "not-a-cursor!",
        "created_after": "yesterday",
        "first": "ten",
        "direction": "sideways",
    }
    for name, value in cases.items():
        response = client.get("/api/v1/payments", params={name: value})
        assert response.status_code == 400, name
        assert response.json()["error"]["type"] == "invalid_request"
        assert name in response.json()["error"]["message"]


def test_another_company_is_forbidden(client: httpx.Client) -> None:
    assert client.get("/api/v1/payments", params={"company_id": "biz_sandbox"}).status_code == 200
    assert client.get("/api/v1/payments", params={"company_id": "biz_other"}).status_code == 403


def test_v2_pages_with_per_capped_at_50_and_unix_timestamps(
    client: httpx.Client, payments: list[dict[str, Any]]
) -> None:
    seen: list[dict[str, Any]] = []
    page_number = 1
    while True:
        page = client.get("/api/v2/payments", params={"page": page_number, "per": 80}).json()
        assert page["pagination"]["total_count"] == len(payments)
        assert page["pagination"]["total_page"] == 5  # 237 / 50, rounded up
        if not page["data"]:
            break
        assert len(page["data"]) <= 50
        seen += page["data"]
        page_number += 1
    assert [p["id"] for p in seen] == [p["id"] for p in payments[::-1]]
    last = seen[0]
    assert last["created_at"] == int(_parse(payments[-1]["created_at"]).timestamp())
    assert isinstance(last["final_amount"], float) and last["final_amount"] == 10 + 236
    assert last["user"] == "user_5" and last["membership"] == "mem_00236"
    assert {p["status"] for p in seen} == {"paid", "open"}  # v1 "pending" shown as v2 "open"


def test_rate_limit_answers_429_with_retry_after_then_recovers(
    payments: list[dict[str, Any]], api_key: str
) -> None:
    scaled = WhopServer.V2_RATE_LIMIT.scaled(0.02)  # the documented limit, 50x faster
    assert (scaled.max_requests, scaled.window_seconds) == (100, pytest.approx(0.2))
    assert scaled.cooldown_seconds == pytest.approx(1.2)
    # A window far longer than any busy machine takes for four requests: the fourth is refused
    # whatever the load; the refusal's own headers say how long the cooldown has left.
    window = RateLimit(max_requests=3, window_seconds=600, cooldown_seconds=0.4)
    with WhopServer(
        api_key=api_key, payments=payments, faults=FaultPlan(rate_limit=window)
    ) as server:
        headers = {"Authorization": f"Bearer {api_key}", VERSION_HEADER: WHOP_API_VERSION}
        with httpx.Client(base_url=server.base_url, headers=headers) as http:
            answers = [http.get("/api/v2/payments") for _ in range(4)]
            assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
            refused = answers[-1]
            assert refused.json() == {"message": "You are being rate limited"}
            assert refused.headers["retry-after"] == "1"  # whole seconds, rounded up
            assert 0 < int(refused.headers["retry-after-ms"]) <= 400
            v1 = http.get("/api/v1/payments")  # v1 counts per operation: its own window
            assert v1.status_code == 200
            time.sleep(int(refused.headers["retry-after-ms"]) / 1000 + 0.05)
            assert http.get("/api/v2/payments").status_code == 200


def test_v1_rate_limit_body_says_when_to_retry(payments: list[dict], api_key: str) -> None:
    plan = FaultPlan(rate_limit=RateLimit(max_requests=1, window_seconds=5.0))
    with WhopServer(api_key=api_key, payments=payments, faults=plan) as server:
        headers = {"Authorization": f"Bearer {api_key}", VERSION_HEADER: WHOP_API_VERSION}
        assert httpx.get(server.base_url + "/api/v1/users", headers=headers).status_code == 200
        refused = httpx.get(server.base_url + "/api/v1/users", headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_exceeded"
    assert refused.json()["error"]["message"] == "Try again in 5 seconds."
    assert refused.headers["retry-after"] == "5"


def test_data_changes_while_running_from_python(
    whop: WhopServer, client: httpx.Client, payments: list[dict[str, Any]]
) -> None:
    changed = {**payments[3], "status": "refunded"}
    new = {**payments[0], "id": "pay_new", "created_at": iso(START + timedelta(days=400))}
    whop.upsert("payments", [changed, new])
    assert whop.delete("payments", ["pay_00000", "pay_missing"]) == 1
    served = {p["id"]: p for p in collect(client, "payments", first=100)}
    assert len(served) == len(payments)  # one added, one deleted
    assert served["pay_00003"]["status"] == "refunded"
    assert "pay_00000" not in served and served["pay_new"] == new

    whop.replace("payments", payments[:5])
    assert [p["id"] for p in collect(client, "payments", direction="asc")] == [
        p["id"] for p in payments[:5]
    ]


def test_callable_source_is_read_again_on_refresh(api_key: str) -> None:
    world = {"payments": whop_payments(3)}
    with WhopServer(api_key=api_key, payments=lambda: world["payments"]) as server:
        world["payments"] = whop_payments(12)
        assert server.count("payments") == 3
        server.refresh()
        assert server.count("payments") == 12


def test_data_changes_over_http_from_another_process(
    whop: WhopServer, client: httpx.Client
) -> None:
    lines = "\n".join(json.dumps(p) for p in whop_payments(4)).encode()
    assert httpx.put(whop.base_url + "/_sandbox/data/payments", content=lines).json() == {
        "count": 4
    }
    extra = json.dumps({**whop_payments(1)[0], "id": "pay_extra"}).encode()
    assert httpx.post(whop.base_url + "/_sandbox/data/payments", content=extra).json() == {
        "count": 5
    }
    deleted = httpx.request("DELETE", whop.base_url + "/_sandbox/data/payments", json=["pay_00001"])
    assert deleted.json() == {"deleted": 1, "count": 4}
    assert {p["id"] for p in collect(client, "payments")} == {
        "pay_00000",
        "pay_00002",
        "pay_00003",
        "pay_extra",
    }
    bad = httpx.put(whop.base_url + "/_sandbox/data/payments", content=b'{"id": "x"}\nnot json')
    assert bad.status_code == 400 and "line 2" in bad.json()["error"]
    assert whop.count("payments") == 4  # a bad upload changes nothing
    missing_id = httpx.post(
        whop.base_url + "/_sandbox/data/payments", content=b'{"status": "paid"}'
    )
    assert missing_id.status_code == 400 and "has no 'id'" in missing_id.json()["error"]
