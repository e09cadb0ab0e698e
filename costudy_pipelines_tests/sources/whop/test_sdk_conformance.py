"""The Whop sandbox against Whop's official SDK (`whop-sdk`, its models are the contract): the
SDK's own client pages every collection of a generated world through the sandbox and parses
every record with its models, at the API version the product's client pins. Plus what the
SDK relies on besides: get-by-id routes and their 404, the last page without a cursor, the
rate-limit answer (injected or real) the SDK's retry reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from whop_sdk import MembershipListItem, NotFoundError, Payment, User, Whop
from whop_sdk.environment import WhopEnvironment

from costudy_pipelines.sandbox.servers import Fault, WhopServer
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines.sources.whop.client import VERSION_HEADER, WHOP_API_VERSION, WhopClient

WORLD = World(WorldConfig(seed=11, people=120, start=date(2024, 1, 1), days=10))


@pytest.fixture(scope="module")
def whop() -> Iterator[tuple[WhopServer, str]]:
    key = "sdk-" + str(WORLD.config.seed)  # not a secret: the sandbox checks what it is given
    with WhopServer(
        api_key=key,
        payments=list(WORLD.records("whop_payments")),
        memberships=list(WORLD.records("whop_memberships")),
        users=list(WORLD.records("whop_users")),
    ) as server:
        yield server, key


def sdk(server: WhopServer, key: str) -> Whop:
    api = f"{server.base_url}/api/v1"
    return Whop(environment=WhopEnvironment(api=api, vault=api), token=key, max_retries=0)


def test_the_product_pins_the_sdks_api_version() -> None:
    client = Whop(token="unused")
    assert client._client_wrapper.get_headers()[VERSION_HEADER] == WHOP_API_VERSION


def test_every_payment_parses_with_the_sdk_models(whop: tuple[WhopServer, str]) -> None:
    server, key = whop
    served = list(sdk(server, key).payments.list(first=50, direction="asc"))
    assert len(served) == len(list(WORLD.records("whop_payments"))) > 100
    assert all(isinstance(payment, Payment) for payment in served)
    for payment in served:
        # the pinned shape: the payer's address in customer_email, no email on the user
        assert payment.customer_email and payment.membership_id and payment.product_id
        assert payment.total is not None and payment.total.amount
        assert "email" not in (payment.user.model_extra or {})
        assert not {"membership", "product", "plan", "member"} & set(payment.model_extra or {})


def test_every_user_parses_with_the_sdk_models(whop: tuple[WhopServer, str]) -> None:
    server, key = whop
    served = list(sdk(server, key).users.list(first=50))
    assert len(served) == len(list(WORLD.records("whop_users")))
    assert all(isinstance(user, User) and user.email for user in served)


def test_every_membership_parses_as_the_sdks_membership_list_item(
    whop: tuple[WhopServer, str],
) -> None:
    server, key = whop
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}) as http:
        records = collect(http, "memberships")
    assert len(records) == len(list(WORLD.records("whop_memberships")))
    items = [MembershipListItem.model_validate(record) for record in records]
    assert all(item.user is not None and item.user.email for item in items)


def collect(http: httpx.Client, collection: str) -> list[dict]:
    params: dict[str, object] = {"first": 100}
    records: list[dict] = []
    while True:
        page = http.get(f"/api/v1/{collection}", params=params).json()
        records += page["data"]
        if not page["page_info"]["has_next_page"]:
            assert page["page_info"]["end_cursor"] is None  # the last page carries no cursor
            return records
        params["after"] = page["page_info"]["end_cursor"]


def test_get_by_id_and_a_missing_id_in_whops_error_shape(whop: tuple[WhopServer, str]) -> None:
    server, key = whop
    first = next(iter(WORLD.records("whop_payments")))
    client = sdk(server, key)
    assert client.payments.retrieve(first["id"]).id == first["id"]
    with pytest.raises(NotFoundError):
        client.payments.retrieve("pay_nope")
    answer = httpx.get(
        f"{server.base_url}/api/v1/payments/pay_nope", headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {"type": "not_found", "message": "payment 'pay_nope' was not found"}
    }


def test_another_api_version_is_refused_not_answered_in_the_wrong_shape(
    whop: tuple[WhopServer, str],
) -> None:
    server, key = whop
    answer = httpx.get(
        f"{server.base_url}/api/v1/payments",
        headers={"Authorization": f"Bearer {key}", VERSION_HEADER: "2025-01-01"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request"
    assert WHOP_API_VERSION in answer.json()["error"]["message"]


def test_the_product_client_asks_for_the_pinned_version(whop: tuple[WhopServer, str]) -> None:
    server, key = whop
    server.request_log.clear()
    with WhopClient(key, base_url=f"{server.base_url}/api/v1", page_size=100) as client:
        assert sum(len(page) for page in client.users()) == len(list(WORLD.records("whop_users")))
    # the sandbox refuses any other version, so every page read proves the header was right
    assert {entry.status for entry in server.request_log} == {200}


def test_the_sdk_retries_an_injected_429_by_its_hint(whop: tuple[WhopServer, str]) -> None:
    server, key = whop
    server.add_fault(Fault("error", status=429, retry_after=0.05, count=1))
    api = f"{server.base_url}/api/v1"
    patient = Whop(environment=WhopEnvironment(api=api, vault=api), token=key, max_retries=2)
    first = next(iter(WORLD.records("whop_users")))
    assert patient.users.retrieve(first["id"]).id == first["id"]
    assert server.faults.faults[-1].fired == 1
