from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from costudy_pipelines.sandbox.servers import Fault, FaultPlan, PlatformApiServer, RateLimit
from costudy_pipelines_tests.sandbox.servers.support import api_client

ENDPOINTS = {
    "leads": "/api/v1/leads",
    "engagements": "/api/v1/engagements",
    "mailing_list": "/api/v1/mailing-list/subscribers",
    "support_tickets": "/api/v1/support-tickets",
}


@pytest.fixture
def platform(api_key: str) -> Iterator[PlatformApiServer]:
    with PlatformApiServer(token=api_key) as server:
        yield server


@pytest.fixture
def client(platform: PlatformApiServer, api_key: str) -> Iterator[httpx.Client]:
    with api_client(platform, api_key) as http:
        yield http


@pytest.mark.parametrize("kind", sorted(ENDPOINTS))
def test_create_and_list_each_kind(
    platform: PlatformApiServer, client: httpx.Client, kind: str
) -> None:
    body = {"email": "ann@example.com", "name": "Ann 'O; DROP", "source_event_id": 17}
    created = client.post(ENDPOINTS[kind], json=body)
    assert created.status_code == 201
    item = created.json()
    assert item["id"].endswith("_000001") and item["email"] == "ann@example.com"
    assert client.get(ENDPOINTS[kind]).json() == {"data": [item]}
    assert platform.created(kind) == [item]
    others = [k for k in ENDPOINTS if k != kind]
    assert all(platform.created(other) == [] for other in others)


def test_same_key_and_body_creates_once_and_replays_the_answer(
    platform: PlatformApiServer, client: httpx.Client
) -> None:
    key = {"Idempotency-Key": "demo-request-42"}
    first = client.post(ENDPOINTS["leads"], json={"email": "a@x.io", "plan": "pro"}, headers=key)
    # Same body with its keys in another order is the same request.
    again = client.post(ENDPOINTS["leads"], json={"plan": "pro", "email": "a@x.io"}, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(platform.created("leads")) == 1


def test_same_key_with_another_body_is_422_and_creates_nothing(
    platform: PlatformApiServer, client: httpx.Client
) -> None:
    key = {"Idempotency-Key": "k-1"}
    client.post(ENDPOINTS["leads"], json={"email": "a@x.io"}, headers=key)
    reused = client.post(ENDPOINTS["leads"], json={"email": "b@x.io"}, headers=key)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    other_endpoint = client.post(ENDPOINTS["engagements"], json={"email": "a@x.io"}, headers=key)
    assert other_endpoint.status_code == 422
    assert [lead["email"] for lead in platform.created("leads")] == ["a@x.io"]
    assert platform.created("engagements") == []


def test_without_a_key_every_post_creates(
    platform: PlatformApiServer, client: httpx.Client
) -> None:
    for _ in range(2):
        client.post(ENDPOINTS["support_tickets"], json={"email": "a@x.io", "subject": "help"})
    assert len(platform.created("support_tickets")) == 2


@pytest.mark.parametrize(
    "fault",
    [Fault("drop", after_handler=True, count=1), Fault("error", after_handler=True, count=1)],
)
def test_answer_lost_after_the_create_then_a_retry_with_the_key_lands_once(
    platform: PlatformApiServer, client: httpx.Client, fault: Fault
) -> None:
    platform.add_fault(fault)
    key = {"Idempotency-Key": "vote-7"}
    body = {"email": "a@x.io", "feature": "dark mode"}
    try:
        lost = client.post(ENDPOINTS["engagements"], json=body, headers=key)
        assert lost.status_code == 500
    except httpx.RemoteProtocolError:
        pass  # dropped: the client cannot know whether the vote was recorded
    assert len(platform.created("engagements")) == 1  # it was
    retried = client.post(ENDPOINTS["engagements"], json=body, headers=key)
    assert retried.status_code == 201 and retried.headers["idempotent-replayed"] == "true"
    assert retried.json() == platform.created("engagements")[0]
    assert len(platform.created("engagements")) == 1


def test_bad_requests(platform: PlatformApiServer, client: httpx.Client) -> None:
    no_email = client.post(ENDPOINTS["leads"], json={"name": "Ann"})
    assert no_email.status_code == 422 and "email" in no_email.json()["error"]["message"]
    not_json = client.post(ENDPOINTS["leads"], content=b"{oops")
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    anonymous = httpx.post(platform.base_url + ENDPOINTS["leads"], json={"email": "a@x.io"})
    assert anonymous.status_code == 401
    assert platform.created("leads") == []
    with pytest.raises(KeyError, match="unknown kind"):
        platform.created("orders")


def test_patch_sets_the_named_fields_and_keeps_the_others(
    platform: PlatformApiServer, client: httpx.Client
) -> None:
    lead = client.post(ENDPOINTS["leads"], json={"email": "a@x.io", "company": "Acme"}).json()
    path = f"{ENDPOINTS['leads']}/{lead['id']}"
    client.patch(path, json={"status": "contacted"})  # set on the platform by its own users

    updated = client.patch(path, json={"company": "Acme GmbH", "phone": None})

    assert updated.status_code == 200
    record = updated.json()
    assert (record["id"], record["created_at"]) == (lead["id"], lead["created_at"])
    assert (record["company"], record["phone"], record["status"]) == (
        "Acme GmbH",
        None,
        "contacted",
    )
    assert record["updated_at"] >= record["created_at"]
    assert client.get(path).json() == record
    assert platform.created("leads") == [record]  # updated in place: still one lead


def test_patch_refuses_unknown_ids_bad_bodies_and_missing_tokens(
    platform: PlatformApiServer, client: httpx.Client
) -> None:
    lead = client.post(ENDPOINTS["leads"], json={"email": "a@x.io"}).json()
    path = f"{ENDPOINTS['leads']}/{lead['id']}"

    unknown = client.patch(f"{ENDPOINTS['leads']}/lead_999999", json={"company": "Acme"})
    other_kind = client.patch(f"{ENDPOINTS['engagements']}/{lead['id']}", json={"value": 1})
    assert (unknown.status_code, other_kind.status_code) == (404, 404)
    assert unknown.json()["error"]["code"] == "not_found"
    assert client.get(f"{ENDPOINTS['leads']}/lead_999999").status_code == 404
    assert client.patch(path, json={"email": "not-an-address"}).status_code == 422
    assert client.patch(path, json={"id": "lead_000042"}).status_code == 422
    assert client.patch(path, json=["a"]).status_code == 422
    assert client.patch(path, content=b"{oops").status_code == 400
    anonymous = httpx.patch(platform.base_url + path, json={"company": "Evil"})
    assert anonymous.status_code == 401
    assert platform.created("leads") == [lead]


def test_patch_passes_the_rate_limit_and_the_fault_plan(
    platform: PlatformApiServer, client: httpx.Client
) -> None:
    lead = client.post(ENDPOINTS["leads"], json={"email": "a@x.io"}).json()
    path = f"{ENDPOINTS['leads']}/{lead['id']}"
    platform.set_faults(
        FaultPlan(
            rate_limit=RateLimit(max_requests=2, window_seconds=60),
            faults=[Fault("error", path=ENDPOINTS["leads"], method="PATCH", status=503, count=1)],
        )
    )

    statuses = [client.patch(path, json={"company": f"c{n}"}).status_code for n in range(3)]

    assert statuses == [503, 200, 429]
    assert platform.created("leads")[0]["company"] == "c1"


def test_reset_forgets_creations_and_keys(
    platform: PlatformApiServer, client: httpx.Client
) -> None:
    key = {"Idempotency-Key": "k"}
    client.post(ENDPOINTS["leads"], json={"email": "a@x.io"}, headers=key)
    platform.reset()
    assert platform.created("leads") == []
    again = client.post(ENDPOINTS["leads"], json={"email": "a@x.io"}, headers=key)
    assert "idempotent-replayed" not in again.headers
    assert len(platform.created("leads")) == 1
