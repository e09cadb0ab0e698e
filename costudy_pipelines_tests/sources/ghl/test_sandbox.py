from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from costudy_pipelines.sandbox.servers import FaultPlan, GoHighLevelServer, RateLimit
from costudy_pipelines_tests.sandbox.servers.factory import START, ghl_contacts, iso
from costudy_pipelines_tests.sandbox.servers.support import api_client

VERSION = {"Version": "2021-07-28"}


@pytest.fixture
def contacts() -> list[dict[str, Any]]:
    # Three contacts per millisecond: the cursor must break ties by id, or records are lost.
    return ghl_contacts(253, same_millisecond=3)


@pytest.fixture
def ghl(api_key: str, contacts: list[dict[str, Any]]) -> Iterator[GoHighLevelServer]:
    others = ghl_contacts(5, location="loc_b")
    with GoHighLevelServer(token=api_key, contacts=contacts + others) as server:
        yield server


@pytest.fixture
def client(ghl: GoHighLevelServer, api_key: str) -> Iterator[httpx.Client]:
    with api_client(ghl, api_key, **VERSION) as http:
        yield http


def list_all(client: httpx.Client, location: str, limit: int) -> list[dict[str, Any]]:
    """The documented loop: feed meta.startAfter + startAfterId back until a short page."""
    params: dict[str, Any] = {"locationId": location, "limit": limit}
    contacts: list[dict[str, Any]] = []
    while True:
        response = client.get("/contacts/", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        contacts += page["contacts"]
        if len(page["contacts"]) < limit:
            return contacts
        meta = page["meta"]
        params.update(startAfter=meta["startAfter"], startAfterId=meta["startAfterId"])


def test_listing_to_the_end_returns_every_contact_exactly_once(
    client: httpx.Client, contacts: list[dict[str, Any]]
) -> None:
    assert list_all(client, "loc_a", limit=100) == contacts
    assert len(list_all(client, "loc_b", limit=100)) == 5


def test_list_meta_and_next_page_url(client: httpx.Client, ghl: GoHighLevelServer) -> None:
    first = client.get("/contacts/", params={"locationId": "loc_a", "limit": 100}).json()
    meta = first["meta"]
    assert first["count"] == meta["total"] == 253
    assert (meta["currentPage"], meta["nextPage"], meta["prevPage"]) == (1, 2, None)
    assert meta["startAfterId"] == "ct_loc_a_00099"
    assert isinstance(meta["startAfter"], int)  # epoch milliseconds
    second = client.get(meta["nextPageUrl"]).json()
    assert meta["nextPageUrl"].startswith(ghl.base_url + "/contacts/?")
    assert second["contacts"][0]["id"] == "ct_loc_a_00100"
    assert (second["meta"]["currentPage"], second["meta"]["prevPage"]) == (2, 1)
    third = client.get(second["meta"]["nextPageUrl"]).json()
    assert len(third["contacts"]) == 53
    assert third["meta"]["nextPageUrl"] is None and third["meta"]["nextPage"] is None


def test_limit_defaults_to_20_and_is_capped_at_100(client: httpx.Client) -> None:
    assert len(client.get("/contacts/", params={"locationId": "loc_a"}).json()["contacts"]) == 20
    capped = client.get("/contacts/", params={"locationId": "loc_a", "limit": 1000})
    assert len(capped.json()["contacts"]) == 100


def test_search_by_page_and_by_search_after(
    client: httpx.Client, contacts: list[dict[str, Any]]
) -> None:
    by_page: list[dict[str, Any]] = []
    for page in (1, 2, 3):
        body = {"locationId": "loc_a", "page": page, "pageLimit": 100}
        answer = client.post("/contacts/search", json=body).json()
        assert answer["total"] == 253
        by_page += answer["contacts"]
    assert [c["id"] for c in by_page] == [c["id"] for c in contacts]

    by_cursor: list[dict[str, Any]] = []
    body = {"locationId": "loc_a", "pageLimit": 40}
    while True:
        found = client.post("/contacts/search", json=body).json()["contacts"]
        by_cursor += found
        if len(found) < 40:
            break
        body["searchAfter"] = found[-1]["searchAfter"]
    assert [{k: v for k, v in c.items() if k != "searchAfter"} for c in by_cursor] == contacts


def added_range(**bounds: datetime) -> list[dict[str, Any]]:
    value = {bound: iso(moment) for bound, moment in bounds.items()}
    return [{"field": "dateAdded", "operator": "range", "value": value}]


def test_search_by_date_added_range_pages_and_totals_the_range_only(
    client: httpx.Client, contacts: list[dict[str, Any]]
) -> None:
    low, high = START + timedelta(minutes=10), START + timedelta(minutes=20)
    wanted = [c["id"] for c in contacts if low <= datetime.fromisoformat(c["dateAdded"]) < high]
    assert len(wanted) == 30  # three contacts a minute
    body: dict[str, Any] = {"locationId": "loc_a", "filters": added_range(gte=low, lt=high)}
    by_page, by_cursor = [], []
    for page in (1, 2, 3, 4, 5):
        answer = client.post("/contacts/search", json={**body, "page": page, "pageLimit": 7})
        assert answer.json()["total"] == 30
        by_page += answer.json()["contacts"]
    cursor: dict[str, Any] = {}
    while found := client.post("/contacts/search", json={**body, **cursor, "pageLimit": 8}):
        by_cursor += found.json()["contacts"]
        if len(found.json()["contacts"]) < 8:
            break
        cursor = {"searchAfter": found.json()["contacts"][-1]["searchAfter"]}
    assert [c["id"] for c in by_page] == [c["id"] for c in by_cursor] == wanted

    exclusive = {"locationId": "loc_a", "filters": added_range(gt=low, lte=high)}
    assert client.post("/contacts/search", json=exclusive).json()["total"] == 30  # 27 + 3
    since = {"locationId": "loc_a", "filters": added_range(gte=low)}
    assert client.post("/contacts/search", json=since).json()["total"] == 253 - 30
    epoch_ms = [{"field": "dateAdded", "operator": "range", "value": {"lt": 1709251200000}}]
    refused = client.post("/contacts/search", json={"locationId": "loc_a", "filters": epoch_ms})
    assert refused.status_code == 422 and "dateAdded lt" in refused.json()["message"][0]


def test_search_limits(client: httpx.Client) -> None:
    too_big = client.post("/contacts/search", json={"locationId": "loc_a", "pageLimit": 501})
    assert too_big.status_code == 422
    assert too_big.json()["message"] == ["pageLimit must not be greater than 500"]
    beyond = client.post(
        "/contacts/search", json={"locationId": "loc_a", "page": 21, "pageLimit": 500}
    )
    assert beyond.status_code == 422 and "searchAfter" in beyond.json()["message"][0]
    no_location = client.post("/contacts/search", json={"pageLimit": 10})
    assert no_location.status_code == 422
    assert client.post("/contacts/search", content=b"{nope").status_code == 422


def test_missing_or_unknown_version_is_401(ghl: GoHighLevelServer, api_key: str) -> None:
    auth = {"Authorization": f"Bearer {api_key}"}
    missing = httpx.get(ghl.base_url + "/contacts/", params={"locationId": "loc_a"}, headers=auth)
    assert missing.status_code == 401
    assert missing.json() == {"statusCode": 401, "message": "version header was not found."}
    assert missing.headers["x-ratelimit-max"] == "100"  # rate-limit headers on every answer
    unknown = httpx.get(
        ghl.base_url + "/contacts/",
        params={"locationId": "loc_a"},
        headers={**auth, "Version": "2020-01-01"},
    )
    assert unknown.status_code == 401 and unknown.json()["message"] == "version header is invalid"


def test_wrong_token_is_401(ghl: GoHighLevelServer) -> None:
    response = httpx.post(
        ghl.base_url + "/contacts/search",
        json={"locationId": "loc_a"},
        headers={"Authorization": "Bearer nope", **VERSION},
    )
    assert response.status_code == 401
    assert response.json() == {"statusCode": 401, "message": "Invalid JWT"}


def test_token_limited_to_its_locations(api_key: str, contacts: list[dict[str, Any]]) -> None:
    with GoHighLevelServer(token=api_key, contacts=contacts, location_ids=["loc_a"]) as server:
        headers = {"Authorization": f"Bearer {api_key}", **VERSION}
        other = httpx.get(server.base_url + "/contacts/?locationId=loc_b", headers=headers)
        own = httpx.get(server.base_url + "/contacts/?locationId=loc_a", headers=headers)
    assert other.status_code == 403 and own.status_code == 200


def test_rate_limit_headers_on_every_answer_and_429_when_over(
    api_key: str, contacts: list[dict[str, Any]]
) -> None:
    # a window a busy machine's four requests cannot outlast (at 0.6 s they could)
    limit = RateLimit(max_requests=3, window_seconds=10, daily_max=5)
    headers = {"Authorization": f"Bearer {api_key}", **VERSION}
    plan = FaultPlan(limit)
    with (
        GoHighLevelServer(token=api_key, contacts=contacts, faults=plan) as server,
        httpx.Client(base_url=server.base_url, headers=headers) as http,
    ):
        answers = [http.get("/contacts/", params={"locationId": "loc_a"}) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        for answer in answers:
            assert answer.headers["x-ratelimit-max"] == "3"
            assert answer.headers["x-ratelimit-interval-milliseconds"] == "10000"
            assert answer.headers["x-ratelimit-limit-daily"] == "5"
        assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert [a.headers["x-ratelimit-daily-remaining"] for a in answers] == [
            "4",
            "3",
            "2",
            "2",
        ]
        assert answers[3].json()["statusCode"] == 429
        assert "retry-after" in answers[3].headers
        time.sleep(10.05)  # the burst window frees up ...
        assert http.get("/contacts/", params={"locationId": "loc_a"}).status_code == 200
        assert http.get("/contacts/", params={"locationId": "loc_a"}).status_code == 200
        # ... but the daily allowance (5) is spent
        daily = http.get("/contacts/", params={"locationId": "loc_a"})
        assert daily.status_code == 429 and daily.headers["x-ratelimit-daily-remaining"] == "0"


def test_documented_limits_are_reported_even_when_not_enforced(client: httpx.Client) -> None:
    answer = client.get("/contacts/", params={"locationId": "loc_a"})
    assert answer.headers["x-ratelimit-max"] == "100"
    assert answer.headers["x-ratelimit-interval-milliseconds"] == "10000"
    assert answer.headers["x-ratelimit-limit-daily"] == "200000"


def test_contacts_change_while_running(
    ghl: GoHighLevelServer, client: httpx.Client, contacts: list[dict[str, Any]]
) -> None:
    moved = {**contacts[0], "locationId": "loc_b"}
    renamed = {**contacts[1], "firstName": "Renamed"}
    ghl.upsert("contacts", [moved, renamed])
    ghl.delete("contacts", [contacts[2]["id"]])
    location_a = list_all(client, "loc_a", limit=100)
    assert location_a == [renamed, *contacts[3:]]  # moved away, renamed in place, deleted
    assert moved in list_all(client, "loc_b", limit=100)


def test_search_sorted_newest_first_pages_down_by_page_and_by_cursor(
    client: httpx.Client, contacts: list[dict[str, Any]]
) -> None:
    newest_first = [c["id"] for c in reversed(contacts)]
    body: dict[str, Any] = {
        "locationId": "loc_a",
        "pageLimit": 100,
        "sort": [{"field": "dateAdded", "direction": "desc"}],
    }
    by_page = []
    for page in (1, 2, 3):
        by_page += client.post("/contacts/search", json={**body, "page": page}).json()["contacts"]
    by_cursor: list[dict[str, Any]] = []
    cursor: dict[str, Any] = {}
    while found := client.post("/contacts/search", json={**body, **cursor}).json()["contacts"]:
        by_cursor += found
        cursor = {"searchAfter": found[-1]["searchAfter"]}
    assert [c["id"] for c in by_page] == [c["id"] for c in by_cursor] == newest_first


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"filters": [{"field": "email", "operator": "eq", "value": "a@b.c"}]},
            "filters.0: field 'email' with operator 'eq' is not emulated",
        ),
        ({"sort": [{"field": "firstName", "direction": "asc"}]}, "sort by ['firstName']"),
        ({"sort": [{"field": "dateAdded", "direction": "up"}]}, "sort.0.direction"),
        ({"query": "anna"}, "query (full-text search) is not emulated"),
        ({"pageSize": 10}, "property pageSize should not exist"),
    ],
)
def test_search_refuses_what_it_does_not_emulate_in_the_api_error_shape(
    client: httpx.Client, change: dict[str, Any], message: str
) -> None:
    refused = client.post("/contacts/search", json={"locationId": "loc_a", **change})
    assert refused.status_code == 422
    body = refused.json()
    assert body["statusCode"] == 422 and body["error"] == "Unprocessable Entity"
    assert message in body["message"][0]


def test_list_refuses_unknown_parameters(client: httpx.Client) -> None:
    refused = client.get("/contacts/", params={"locationId": "loc_a", "sortBy": "dateAdded"})
    assert refused.status_code == 422
    assert refused.json()["message"] == ["property sortBy should not exist"]


def test_page_cap_sends_short_pages_before_the_end(
    api_key: str, contacts: list[dict[str, Any]]
) -> None:
    with (
        GoHighLevelServer(token=api_key, contacts=contacts, page_cap=7) as server,
        api_client(server, api_key, **VERSION) as http,
    ):
        first = http.get("/contacts/", params={"locationId": "loc_a", "limit": 100}).json()
        assert len(first["contacts"]) == 7 and first["meta"]["nextPageUrl"]
        body = {"locationId": "loc_a", "pageLimit": 100}
        search = http.post("/contacts/search", json=body).json()
        assert len(search["contacts"]) == 7 and search["total"] == 253
        # page numbers count in pageLimit: page 2 starts at 100, past 93 contacts never served
        second = http.post("/contacts/search", json={**body, "page": 2}).json()
        assert second["contacts"][0]["id"] == contacts[100]["id"]


@pytest.mark.parametrize("field", ["count", None])
def test_search_count_field_as_the_reference_names_it_or_missing(
    api_key: str, contacts: list[dict[str, Any]], field: str | None
) -> None:
    with (
        GoHighLevelServer(token=api_key, contacts=contacts, search_count_field=field) as server,
        api_client(server, api_key, **VERSION) as http,
    ):
        answer = http.post("/contacts/search", json={"locationId": "loc_a"}).json()
    assert "total" not in answer
    assert answer.get("count") == (253 if field else None)
