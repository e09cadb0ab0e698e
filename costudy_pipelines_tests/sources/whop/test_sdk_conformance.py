"""The Whop sandbox against Whop's official SDK (`whop-sdk` 2.6.0, pinned in pyproject: its
models are the contract). For every feed the project reads (payments, memberships, users) and
for the members endpoint memberships reach their people through, the SDK's own `list()` and
`retrieve()` methods page a generated world through the sandbox and parse every answer with the
SDK's models, strictly: a field the model does not declare fails the test, at any depth. The
project's client reads the same sandbox and its validators parse the same records. Plus what
the SDK relies on besides: the version header (a request without it is refused), 404s in
Whop's error shape, the last page without a cursor, the rate-limit answer the SDK retries by.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import psycopg
import pydantic
import pytest
from whop_sdk import Member, Membership, NotFoundError, Payment, User, Whop
from whop_sdk.core.api_error import ApiError
from whop_sdk.environment import WhopEnvironment

from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.loading.windows import sync_windows, utc_days
from costudy_pipelines.lib.validation.records import Reject, validate
from costudy_pipelines.sandbox.generators.whop import members
from costudy_pipelines.sandbox.people import normalise_email
from costudy_pipelines.sandbox.servers import Fault, WhopServer
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines.sources.whop.client import (
    MEMBER_BATCH,
    VERSION_HEADER,
    WHOP_API_VERSION,
    WhopClient,
)
from costudy_pipelines.sources.whop.records import (
    RESOLVED_KEY,
    WhopMembershipValidator,
    WhopPaymentValidator,
    WhopUserValidator,
)
from costudy_pipelines.sources.whop.spec import whop_memberships
from costudy_pipelines_tests.registered import registered

WORLD = World(WorldConfig(seed=11, people=300, start=date(2024, 1, 1), days=10))
FEEDS = {  # feed -> (the SDK model its list and retrieve answer, the project's validator)
    "payments": (Payment, WhopPaymentValidator),
    "memberships": (Membership, WhopMembershipValidator),
    "users": (User, WhopUserValidator),
}


@pytest.fixture(scope="module")
def whop() -> Iterator[tuple[WhopServer, str]]:
    key = "sdk-" + str(WORLD.config.seed)  # not a secret: the sandbox checks what it is given
    with WhopServer(
        api_key=key,
        payments=list(WORLD.records("whop_payments")),
        memberships=list(WORLD.records("whop_memberships")),
        users=list(WORLD.records("whop_users")),
        members=members(WORLD),
    ) as server:
        yield server, key


def sdk(server: WhopServer, key: str, *, max_retries: int = 0) -> Whop:
    api = f"{server.base_url}/api/v1"
    return Whop(environment=WhopEnvironment(api=api, vault=api), token=key, max_retries=max_retries)


def undeclared(model: pydantic.BaseModel, path: str = "") -> list[str]:
    """Every field of a parsed answer its SDK model does not declare, at any depth."""
    found = [f"{path}{name}" for name in model.model_extra or {}]
    for name in type(model).model_fields:
        value = getattr(model, name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, pydantic.BaseModel):
                found += undeclared(item, f"{path}{name}.")
    return found


def enum_values(model: type[pydantic.BaseModel], field: str) -> set[str]:
    """The literal values an SDK enum field allows (its Union[Literal[...], Any])."""
    literal = typing.get_args(model.model_fields[field].annotation)[0]
    return set(typing.get_args(literal))


def world_records(feed: str) -> list[dict[str, Any]]:
    return list(WORLD.records(f"whop_{feed}"))


def test_the_product_pins_the_sdks_api_version() -> None:
    client = Whop(token="unused")
    assert client._client_wrapper.get_headers()[VERSION_HEADER] == WHOP_API_VERSION


@pytest.mark.parametrize("feed", [*FEEDS, "members"])
def test_the_sdk_lists_and_retrieves_every_record_in_exactly_its_models(
    whop: tuple[WhopServer, str], feed: str
) -> None:
    server, key = whop
    client = sdk(server, key)
    model = Member if feed == "members" else FEEDS[feed][0]
    resource = getattr(client, feed)
    listed = list(resource.list(first=50))
    expected = members(WORLD) if feed == "members" else world_records(feed)
    assert len(listed) == len(expected) > 40
    assert {item.id for item in listed} == {record["id"] for record in expected}
    assert all(type(item) is model for item in listed)
    assert [(item.id, undeclared(item)) for item in listed if undeclared(item)] == []
    for item in listed[:: max(1, len(listed) // 7)]:  # retrieve answers the list's record
        assert resource.retrieve(item.id) == item


def test_payment_and_membership_statuses_are_within_the_sdks_enums(
    whop: tuple[WhopServer, str],
) -> None:
    server, key = whop
    client = sdk(server, key)
    payments = list(client.payments.list(first=100))
    assert {p.status for p in payments} <= enum_values(Payment, "status")
    assert {p.substatus for p in payments} <= enum_values(Payment, "substatus")
    assert {"paid", "open", "void"} <= {p.status for p in payments}
    memberships = list(client.memberships.list(first=100))
    assert {m.status for m in memberships} <= enum_values(Membership, "status")


def test_memberships_carry_no_email_and_name_their_buyer_and_member(
    whop: tuple[WhopServer, str],
) -> None:
    server, key = whop
    for membership in sdk(server, key).memberships.list(first=100):
        dumped = membership.model_dump_json()
        assert "email" not in dumped.lower()
        assert membership.user_id and membership.member_id and membership.plan_id
        assert membership.product_id == membership.product.id
        assert membership.initial_price.amount and membership.account.id


def test_users_show_no_email_as_whop_shows_them_to_a_company(
    whop: tuple[WhopServer, str],
) -> None:
    """2.6.0 fills User.email only on the caller's own `me` view."""
    server, key = whop
    client = sdk(server, key)
    assert all(user.email is None for user in client.users.list(first=100))
    assert client.users.retrieve(world_records("users")[0]["id"]).email is None


def test_the_project_reads_what_the_sdk_reads_and_validates_it(
    whop: tuple[WhopServer, str],
) -> None:
    server, key = whop
    rejects = {entry.key: entry.reject for feed in FEEDS for entry in WORLD.entries(f"whop_{feed}")}
    client = sdk(server, key)
    with WhopClient(key, base_url=f"{server.base_url}/api/v1", company_id="biz_sandbox") as ours:
        for feed, (_, validator_class) in FEEDS.items():
            validator = validator_class()
            read = [record for page in ours.pages(feed) for record in page]
            by_sdk = {item.id: item for item in getattr(client, feed).list(first=100)}
            assert [r["id"] for r in read if r["id"] not in by_sdk] == []
            assert len(read) == len(by_sdk)
            for record in read:
                whop_fields = {k: v for k, v in record.items() if k != RESOLVED_KEY}
                # the project's records are Whop's answer (plus, for memberships, its lookup)
                assert (
                    type(by_sdk[record["id"]]).model_validate(whop_fields) == by_sdk[record["id"]]
                )
                rejected = isinstance(validate(validator, record), Reject)
                assert rejected == (rejects[record["id"]] is not None), (feed, record["id"])


def test_membership_emails_come_from_the_members_endpoint_in_batches_cached_per_client(
    whop: tuple[WhopServer, str],
) -> None:
    people = {entry.record["user_id"]: entry.person for entry in WORLD.entries("whop_memberships")}
    server, key = whop
    server.request_log.clear()
    with WhopClient(key, base_url=f"{server.base_url}/api/v1", page_size=25) as client:
        read = [record for page in client.pages("memberships") for record in page]
        again = [record for page in client.pages("memberships") for record in page]
        assert again == read  # the second read is served from the cache
        lookups = client.lookup_metadata()
        # users carry no email either: theirs come from the same lookup, cached
        users = [record for page in client.pages("users") for record in page]
        after_users = client.lookup_metadata()
    member_requests = [e for e in server.request_log if e.path.endswith("/members")]
    assert len(member_requests) == after_users["member_lookup_requests"]
    # one lookup per page of memberships at most (25 < MEMBER_BATCH), none on the second read
    pages = len(read) // 25 + 1
    assert 0 < lookups["member_lookup_requests"] <= pages and MEMBER_BATCH > 25
    assert lookups["member_users_resolved"] == len(people)
    for record in read:
        resolved = record[RESOLVED_KEY]
        assert resolved["member_user_id"] == record["user_id"]
        person = people[record["user_id"]]
        assert normalise_email(resolved["member_email"]) == WORLD.address(person, "whop")
    owners = {entry.key: entry.person for entry in WORLD.entries("whop_users")}
    assert len(users) == len(owners)
    for user in users:
        email = normalise_email(user[RESOLVED_KEY]["member_email"])
        assert email == WORLD.address(owners[user["id"]], "whop")


def test_the_sdk_narrows_members_to_users_as_the_client_asks(
    whop: tuple[WhopServer, str],
) -> None:
    """The client's lookup (`GET /members?user_ids=...`, repeated) is the SDK's own filter."""
    server, key = whop
    wanted = [record["user_id"] for record in world_records("memberships")[:5]]
    found = list(sdk(server, key).members.list(user_ids=wanted, first=100))
    assert {member.user.id for member in found if member.user} == set(wanted)
    assert all(member.email for member in found)
    assert list(sdk(server, key).members.list(user_ids=["user_nobody"])) == []


def test_a_membership_is_stored_with_its_persons_email(
    whop: tuple[WhopServer, str], warehouse_url: str
) -> None:
    """The real path: the product's client against the sandbox, the load engine into a
    migrated warehouse; each membership's row points at the user of its buyer's address."""
    server, key = whop
    start = datetime.combine(WORLD.config.start, time(), tzinfo=UTC) - timedelta(days=400)
    end = start + timedelta(days=800)  # every membership, whatever day it was created
    with WhopClient(key, base_url=f"{server.base_url}/api/v1") as client:
        reports = list(
            sync_windows(
                warehouse_url,
                registered(whop_memberships()),
                [("all", TimeWindow(start, end))],
                lambda window: client.pages("memberships", window),
            )
        )
    assert reports[0].inserted > 40
    expected = {
        entry.key: WORLD.address(entry.person, "whop")
        for entry in WORLD.entries("whop_memberships")
        if entry.reject is None and entry.person is not None
    }
    with psycopg.connect(warehouse_url) as conn:
        stored = dict(
            conn.execute(
                "select m.external_id, u.email from whop_memberships m join users u"
                " on u.id = m.user_id where m.deleted_at is null"
            ).fetchall()
        )
    assert stored == expected


def test_a_request_without_the_version_header_is_refused(whop: tuple[WhopServer, str]) -> None:
    server, key = whop
    for path in ("/api/v1/payments", "/api/v1/memberships", "/api/v1/members", "/api/v1/users"):
        answer = httpx.get(f"{server.base_url}{path}", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 400, path
        assert VERSION_HEADER in answer.json()["error"]["message"]
    # the SDK told to send no version is refused too
    api = f"{server.base_url}/api/v1"
    bare = Whop(
        environment=WhopEnvironment(api=api, vault=api),
        token=key,
        max_retries=0,
        api_version_date=None,
    )
    with pytest.raises(ApiError) as refused:
        bare.users.retrieve(world_records("users")[0]["id"])
    assert refused.value.status_code == 400


def test_get_by_id_and_a_missing_id_in_whops_error_shape(whop: tuple[WhopServer, str]) -> None:
    server, key = whop
    client = sdk(server, key)
    with pytest.raises(NotFoundError):
        client.payments.retrieve("pay_nope")
    with pytest.raises(NotFoundError):
        client.members.retrieve("mber_nope")
    answer = httpx.get(
        f"{server.base_url}/api/v1/payments/pay_nope",
        headers={"Authorization": f"Bearer {key}", VERSION_HEADER: WHOP_API_VERSION},
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
        assert sum(len(page) for page in client.users()) == len(world_records("users"))
    # the sandbox refuses a missing or other version, so every page read proves the header
    assert {entry.status for entry in server.request_log} == {200}


def test_the_sdk_retries_an_injected_429_by_its_hint(whop: tuple[WhopServer, str]) -> None:
    server, key = whop
    server.add_fault(Fault("error", status=429, retry_after=0.05, count=1))
    first = world_records("users")[0]
    assert sdk(server, key, max_retries=2).users.retrieve(first["id"]).id == first["id"]
    assert server.faults.faults[-1].fired == 1


def test_days_split_the_memberships_the_sdk_lists(whop: tuple[WhopServer, str]) -> None:
    server, key = whop
    last = WORLD.config.start + timedelta(days=WORLD.config.days - 1)
    days = list(utc_days(WORLD.config.start, last))
    with WhopClient(key, base_url=f"{server.base_url}/api/v1") as client:
        by_day = [r["id"] for _, window in days for page in client.pages("memberships", window)
                  for r in page]  # fmt: skip
    listed = {m.id for m in sdk(server, key).memberships.list(first=100)}
    assert len(by_day) == len(set(by_day)) and set(by_day) <= listed
