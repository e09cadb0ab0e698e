"""Faults on demand, through real HTTP: the gate every sandbox server shares."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from costudy_pipelines.sandbox.servers import (
    Fault,
    FaultPlan,
    GoHighLevelServer,
    PlatformApiServer,
    RateLimit,
    SandboxServer,
    SheetsServer,
    WhopServer,
)
from costudy_pipelines.sources.whop.client import VERSION_HEADER, WHOP_API_VERSION
from costudy_pipelines_tests.sandbox.servers.factory import whop_payments

PAYMENTS = whop_payments(40)


def statuses(client: httpx.Client, count: int, path: str = "/api/v1/payments") -> list[int]:
    return [client.get(path).status_code for _ in range(count)]


def test_errors_at_a_rate_are_repeatable_with_the_same_seed(api_key: str) -> None:
    def run(seed: int) -> list[int]:
        plan = FaultPlan(faults=[Fault("error", rate=0.3, status=503)], seed=seed)
        with WhopServer(api_key=api_key, payments=PAYMENTS, faults=plan) as server:
            headers = {"Authorization": f"Bearer {api_key}", VERSION_HEADER: WHOP_API_VERSION}
            with httpx.Client(base_url=server.base_url, headers=headers) as http:
                return statuses(http, 40)

    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert first != other
    assert set(first) == {200, 503}
    assert 4 <= first.count(503) <= 24  # about 30 % of 40


def test_fail_the_next_three_requests(whop: WhopServer, client: httpx.Client) -> None:
    whop.add_fault(Fault("error", count=3, status=502))
    assert statuses(client, 4) == [502, 502, 502, 200]
    assert whop.faults.faults[0].fired == 3


def test_faults_target_a_path_and_can_skip_requests(whop: WhopServer, client: httpx.Client) -> None:
    whop.add_fault(Fault("error", path="/api/v1/memberships", skip=1, count=1))
    assert statuses(client, 2) == [200, 200]  # other paths untouched
    assert statuses(client, 3, "/api/v1/memberships") == [200, 500, 200]
    whop.add_fault(Fault("error", method="POST"))
    assert statuses(client, 1) == [200]  # only POSTs would fail


def test_5xx_body_is_the_systems_error_shape(whop: WhopServer, client: httpx.Client) -> None:
    whop.add_fault(Fault("error", count=1))
    assert client.get("/api/v1/payments").json()["error"]["type"] == "internal_server_error"


SYSTEMS: dict[str, Callable[[str], SandboxServer]] = {
    "gohighlevel": lambda key: GoHighLevelServer(token=key),
    "sheets": lambda key: SheetsServer({}),
    "platform": lambda key: PlatformApiServer(token=key),
}
ERROR_SHAPES = {
    "gohighlevel": ("/contacts/", {"statusCode": 500, "message": "Internal server error"}),
    "sheets": (
        "/v4/spreadsheets/x",
        {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}},
    ),
    "platform": (
        "/api/v1/leads",
        {"error": {"code": "internal_error", "message": "internal server error"}},
    ),
}


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_every_system_answers_injected_errors_in_its_own_shape(system: str, api_key: str) -> None:
    path, body = ERROR_SHAPES[system]
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Version": "2021-07-28",
        VERSION_HEADER: WHOP_API_VERSION,
    }
    with SYSTEMS[system](api_key) as server:
        server.add_fault(Fault("error"))
        answer = httpx.get(server.base_url + path, headers=headers)
    assert (answer.status_code, answer.json()) == (500, body)


RATE_LIMITED_PATHS = {
    "gohighlevel": "/contacts/?locationId=loc_a",
    "sheets": "/v4/spreadsheets/x",
    "platform": "/api/v1/leads",
    "whop": "/api/v1/payments",
}
# what varies between two answers however they are made
VOLATILE_HEADERS = {"date", "server", "content-length", "retry-after-ms"}


@pytest.mark.parametrize("system", sorted(RATE_LIMITED_PATHS))
def test_an_injected_429_is_the_systems_rate_limit_answer(system: str, api_key: str) -> None:
    """Same body, same headers, same wait hint as when the system's own limit is hit."""
    make = {**SYSTEMS, "whop": lambda key: WhopServer(api_key=key)}[system]
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Version": "2021-07-28",
        VERSION_HEADER: WHOP_API_VERSION,
    }
    path = RATE_LIMITED_PATHS[system]
    # One request a window: the first is answered by the fault, the second by the limit.
    plan = FaultPlan(
        rate_limit=RateLimit(max_requests=1, window_seconds=30.0),
        faults=[Fault("error", status=429, retry_after=30.0, count=1)],
    )
    with make(api_key) as server:
        server.set_faults(plan)
        injected = httpx.get(server.base_url + path, headers=headers)
        limited = httpx.get(server.base_url + path, headers=headers)
        assert [fault.fired for fault in server.faults.faults] == [1]
    assert injected.status_code == limited.status_code == 429
    assert injected.json() == limited.json()
    kept = {name: value for name, value in injected.headers.items() if name not in VOLATILE_HEADERS}
    assert kept == {
        name: value for name, value in limited.headers.items() if name not in VOLATILE_HEADERS
    }
    assert ("retry-after" in kept) == (system != "sheets")  # Google sends no hint


def test_latency_delays_the_answer(whop: WhopServer, client: httpx.Client) -> None:
    whop.add_fault(Fault("latency", seconds=2.0, count=1))
    started = time.perf_counter()
    assert client.get("/api/v1/payments").status_code == 200
    assert time.perf_counter() - started >= 2.0  # a lower bound: load only adds to it
    started = time.perf_counter()
    client.get("/api/v1/payments")
    assert time.perf_counter() - started < 2.0  # the fault was spent: no second delay


def test_hang_outlasts_the_client_timeout_and_does_not_hold_up_stop(
    whop: WhopServer, client: httpx.Client
) -> None:
    whop.add_fault(Fault("hang", seconds=30, count=1))
    started = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        client.get("/api/v1/payments", timeout=0.3)
    assert time.perf_counter() - started < 15  # the client gave up, not the 30 s hang
    assert client.get("/api/v1/payments").status_code == 200  # the next request is served
    whop.add_fault(Fault("hang", seconds=30))
    with pytest.raises(httpx.ReadTimeout):
        client.get("/api/v1/payments", timeout=0.2)
    started = time.perf_counter()
    whop.stop()  # a request still stalled must not keep the server up for 30 s
    assert time.perf_counter() - started < 15


def test_dropped_connection_gets_no_answer(whop: WhopServer, client: httpx.Client) -> None:
    whop.add_fault(Fault("drop", count=1))
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        client.get("/api/v1/payments")
    assert whop.request_log[-1].status == 0
    assert client.get("/api/v1/payments").status_code == 200


@pytest.mark.parametrize("mode", ["invalid_json", "wrong_shape"])
def test_malformed_page(whop: WhopServer, client: httpx.Client, mode: str) -> None:
    whop.add_fault(Fault("malformed", malformed=mode, count=1))
    broken = client.get("/api/v1/payments", params={"first": 20})
    assert broken.status_code == 200
    if mode == "invalid_json":
        with pytest.raises(json.JSONDecodeError):
            broken.json()
    else:
        page = broken.json()
        assert page["data"] == {"unexpected": 20} and "page_info" in page
    assert isinstance(client.get("/api/v1/payments").json()["data"], list)


def test_repeated_page_serves_the_same_cursor_page_twice(
    whop: WhopServer, client: httpx.Client, payments: list[dict[str, Any]]
) -> None:
    whop.add_fault(Fault("repeat", path="/api/v1/payments", skip=1, count=1))
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"first": 20, "direction": "asc"}
    while True:
        page = client.get("/api/v1/payments", params=params).json()
        pages.append(page)
        if not page["page_info"]["has_next_page"]:
            break
        params["after"] = page["page_info"]["end_cursor"]
    assert pages[1] == pages[0]  # same records, same end_cursor
    ids = [p["id"] for page in pages for p in page["data"]]
    assert len(ids) == len(payments) + 20  # one page seen twice ...
    assert sorted(set(ids)) == [p["id"] for p in payments]  # ... and nothing lost


def test_faults_changed_while_running_over_http(whop: WhopServer, client: httpx.Client) -> None:
    admin = whop.base_url + "/_sandbox/faults"
    plan = {"faults": [{"kind": "error", "status": 503, "count": 1}], "seed": 3}
    assert httpx.put(admin, json=plan).status_code == 200
    assert statuses(client, 2) == [503, 200]
    state = httpx.get(admin).json()
    assert state["faults"][0]["fired"] == 1 and state["seed"] == 3
    assert httpx.post(admin, json={"kind": "error", "status": 504}).status_code == 200
    assert statuses(client, 1) == [504]
    limited = {"rate_limit": {"max_requests": 1, "window_seconds": 10}}
    assert httpx.put(admin, json=limited).status_code == 200
    assert statuses(client, 2) == [200, 429]
    assert httpx.delete(admin).json() == {"rate_limit": None, "faults": [], "seed": 0}
    assert statuses(client, 2) == [200, 200]
    refused = httpx.post(admin, json={"kind": "meteor"})
    assert refused.status_code == 400 and "meteor" in refused.json()["error"]
    assert httpx.put(admin, json={"faults": [], "colour": "red"}).status_code == 400


def test_admin_endpoints_bypass_auth_and_faults(whop: WhopServer) -> None:
    whop.add_fault(Fault("error"))
    assert httpx.get(whop.base_url + "/_sandbox/health").json() == {
        "system": "whop",
        "status": "ok",
    }


def test_invalid_faults_are_refused_in_python() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rate"):
        Fault("error", rate=2)
