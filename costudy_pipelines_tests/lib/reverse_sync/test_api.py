"""The API strategy against the real PlatformApiServer over HTTP, with its faults."""

from __future__ import annotations

import time

import httpx
import pytest

from costudy_pipelines.lib.clients.http import parse_retry_after
from costudy_pipelines.lib.reverse_sync import (
    PlatformApiError,
    SyncOptions,
    event_type,
    find_discrepancies,
    sync_event_type,
)
from costudy_pipelines.lib.reverse_sync.api import Pacer
from costudy_pipelines.sandbox.servers import Fault, FaultPlan, RateLimit
from costudy_pipelines_tests.lib.reverse_sync.support import (
    add_rows,
    api_client,
    api_root,
    demo_request,
    edit_row,
    rows,
    tracking,
)

DEMO = event_type("demo_requests")
LEADS_PATH = "/api/v1/leads"


def api_sync(website, platform, client, name: str = "demo_requests", **options):
    return sync_event_type(
        event_type(name), website, platform, SyncOptions(strategy="api", **options), api=client
    )


def posts(server) -> list[int]:
    """Statuses of the creates the server answered, in order."""
    return [r.status for r in server.request_log if r.method == "POST"]


def patches(server) -> list[int]:
    """Statuses of the updates the server answered, in order."""
    return [r.status for r in server.request_log if r.method == "PATCH"]


def set_lead_status(server, token: str, lead_id: str, status: str) -> None:
    """The sales team's own change to a lead, through the platform's API."""
    answer = httpx.patch(
        f"{api_root(server)}/leads/{lead_id}",
        json={"status": status},
        headers={"Authorization": f"Bearer {token}"},
    )
    answer.raise_for_status()


def test_events_are_created_once_through_the_api(website, platform, platform_api, api_token):
    ids = add_rows(website, "demo_requests", [demo_request(f"P{n}@Example.com") for n in range(3)])
    with api_client(platform_api, api_token) as client:
        first = api_sync(website, platform, client)
        again = api_sync(website, platform, client)

    created = platform_api.created("leads")
    assert sorted(lead["source_id"] for lead in created) == sorted(map(str, ids))
    assert {lead["email"] for lead in created} == {f"p{n}@example.com" for n in range(3)}
    assert (first.synced, again.unchanged, again.written) == (3, 3, 0)
    assert posts(platform_api) == [201, 201, 201]  # the re-run sent nothing
    states = tracking(platform, "demo_requests")
    assert {s["target_id"] for s in states.values()} == {lead["id"] for lead in created}
    assert {(s["status"], s["strategy"]) for s in states.values()} == {("synced", "api")}
    assert find_discrepancies(DEMO, website, platform).count == 0


def test_a_new_demo_request_becomes_one_lead_and_an_edit_updates_that_lead(
    website, platform, platform_api, api_token
):
    [source_id] = add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    with api_client(platform_api, api_token) as client:
        first = api_sync(website, platform, client)
        [created] = platform_api.created("leads")
        set_lead_status(platform_api, api_token, created["id"], "contacted")

        edit_row(website, "demo_requests", source_id, company="Acme GmbH", content="Call me")
        edited = api_sync(website, platform, client)
        again = api_sync(website, platform, client)

    [lead] = platform_api.created("leads")  # one lead, updated in place
    assert lead["id"] == created["id"]
    assert (lead["company"], lead["message"], lead["email"]) == (
        "Acme GmbH",
        "Call me",
        "ann@example.com",
    )
    assert lead["status"] == "contacted"  # the sales team's field is not the sync's
    assert (first.synced, edited.synced, edited.updated, again.written) == (1, 0, 1, 0)
    assert (posts(platform_api), patches(platform_api)) == ([201], [200, 200])
    state = tracking(platform, "demo_requests")[str(source_id)]
    assert (state["status"], state["target_id"], state["attempts"]) == ("synced", lead["id"], 1)
    audit = rows(
        platform, "select operation, target_id from reverse_sync_audit where source_id is not null"
    )
    assert audit == [
        {"operation": "create", "target_id": lead["id"]},
        {"operation": "update", "target_id": lead["id"]},
    ]
    assert find_discrepancies(DEMO, website, platform).count == 0


def test_429_and_5xx_on_updates_are_retried_and_a_lost_answer_changes_nothing_twice(
    website, platform, platform_api, api_token
):
    ids = add_rows(website, "demo_requests", [demo_request(f"p{n}@example.com") for n in range(4)])
    with api_client(platform_api, api_token, max_attempts=8) as client:
        api_sync(website, platform, client)
        for source_id in ids:
            edit_row(website, "demo_requests", source_id, company=f"Edited {source_id}")
        platform_api.set_faults(
            FaultPlan(
                rate_limit=RateLimit(max_requests=2, window_seconds=0.05),
                faults=[
                    Fault("error", path=LEADS_PATH, method="PATCH", status=503, count=2),
                    # The update is applied, then its answer is lost: it is sent again.
                    Fault(
                        "error",
                        path=LEADS_PATH,
                        method="PATCH",
                        status=502,
                        count=1,
                        skip=3,
                        after_handler=True,
                    ),
                ],
            )
        )
        report = api_sync(website, platform, client)

    assert {429, 502, 503} <= set(patches(platform_api))
    assert (report.updated, report.synced, report.failed) == (4, 0, 0)
    leads = platform_api.created("leads")
    assert sorted(lead["company"] for lead in leads) == sorted(f"Edited {i}" for i in ids)
    assert posts(platform_api) == [201] * 4  # no create for an edit, even when retried
    assert find_discrepancies(DEMO, website, platform).count == 0


def test_a_duplicate_delivery_of_an_edit_updates_once(website, platform, platform_api, api_token):
    [source_id] = add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    with api_client(platform_api, api_token) as client:
        api_sync(website, platform, client)
        edit_row(website, "demo_requests", source_id, company="Pushed")
        for delivery in ("d-1", "d-2"):  # the website pushed the same change twice
            platform.execute(
                "insert into reverse_sync_webhook_inbox (delivery_id, event_type, source_id, "
                "payload, signature_verified) values (%s, 'demo_requests', %s, '{}', true)",
                (delivery, str(source_id)),
            )
        report = api_sync(website, platform, client)
        again = api_sync(website, platform, client)

    assert (report.updated, again.written, again.unchanged) == (1, 0, 1)
    assert patches(platform_api) == [200]
    [lead] = platform_api.created("leads")
    assert lead["company"] == "Pushed"
    processed = rows(platform, "select processed_at from reverse_sync_webhook_inbox")
    assert all(row["processed_at"] is not None for row in processed)


def test_an_edit_of_a_record_deleted_on_the_platform_is_a_dead_letter(
    website, platform, platform_api, api_token
):
    [source_id] = add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    with api_client(platform_api, api_token) as client:
        api_sync(website, platform, client)
        [lead] = platform_api.created("leads")
        platform_api.reset()  # the platform lost (or someone deleted) the lead
        edit_row(website, "demo_requests", source_id, company="Acme GmbH")
        report = api_sync(website, platform, client)

    assert (report.dead, report.synced, report.updated) == (1, 0, 0)
    assert report.dead_letters[0].reason == (
        f"PATCH /api/v1/leads/{lead['id']} answered 404: no leads record '{lead['id']}'"
    )
    assert platform_api.created("leads") == []  # not created again behind the platform's back
    state = tracking(platform, "demo_requests")[str(source_id)]
    assert (state["status"], state["target_id"]) == ("dead", lead["id"])


def test_429_and_5xx_are_retried_to_success(website, platform, platform_api, api_token):
    add_rows(website, "demo_requests", [demo_request(f"p{n}@example.com") for n in range(6)])
    # The platform's limit, shrunk: 2 requests per 50 ms, answering 429 + retry-after-ms.
    platform_api.set_faults(
        FaultPlan(
            rate_limit=RateLimit(max_requests=2, window_seconds=0.05),
            faults=[
                Fault("error", path=LEADS_PATH, status=503, count=2),
                Fault("error", path=LEADS_PATH, status=500, count=1, skip=3),
            ],
        )
    )
    with api_client(platform_api, api_token, max_attempts=8) as client:
        report = api_sync(website, platform, client)

    statuses = posts(platform_api)
    assert {429, 500, 503} <= set(statuses)
    assert (report.synced, report.failed) == (6, 0)
    assert len(platform_api.created("leads")) == 6


def test_a_create_whose_answer_was_lost_is_not_created_twice(
    website, platform, platform_api, api_token
):
    add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    # The platform creates the lead, then the answer is lost (as in a crash or a proxy 502).
    platform_api.add_fault(Fault("error", path=LEADS_PATH, status=502, count=1, after_handler=True))
    with api_client(platform_api, api_token) as client:
        report = api_sync(website, platform, client)

    assert posts(platform_api) == [502, 201]
    [lead] = platform_api.created("leads")
    assert report.synced == 1
    [audit] = rows(platform, "select detail from reverse_sync_audit where operation = 'create'")
    assert audit["detail"] == {"http_status": 201, "http_attempts": 2, "replayed": True}
    assert tracking(platform, "demo_requests")[lead["source_id"]]["target_id"] == lead["id"]


def test_a_run_that_lost_the_answer_is_completed_by_the_next_run(
    website, platform, platform_api, api_token
):
    add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    platform_api.add_fault(Fault("drop", path=LEADS_PATH, count=1, after_handler=True))
    with api_client(platform_api, api_token, max_attempts=1) as client:
        lost = api_sync(website, platform, client)
        [state] = tracking(platform, "demo_requests").values()
        assert (lost.failed, state["status"], state["target_id"]) == (1, "failed", None)
        assert len(platform_api.created("leads")) == 1  # it did land, we just do not know it

        completed = api_sync(website, platform, client)

    [lead] = platform_api.created("leads")
    [state] = tracking(platform, "demo_requests").values()
    assert (completed.synced, state["status"], state["target_id"]) == (1, "synced", lead["id"])


def test_the_retry_cap_makes_a_dead_letter_with_its_reason(
    website, platform, platform_api, api_token
):
    [source_id] = add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    platform_api.add_fault(Fault("error", path=LEADS_PATH, status=500))  # for good
    with api_client(platform_api, api_token, max_attempts=2) as client:
        runs = [api_sync(website, platform, client, max_attempts=2) for _ in range(3)]

    assert [(r.failed, r.dead) for r in runs] == [(1, 0), (0, 1), (0, 0)]
    assert len(posts(platform_api)) == 4  # 2 runs x 2 attempts; the dead letter is left alone
    state = tracking(platform, "demo_requests")[str(source_id)]
    assert (state["status"], state["attempts"]) == ("dead", 2)
    assert state["last_error"] == "POST /api/v1/leads answered 500: internal server error"
    assert runs[1].dead_letters[0].reason == state["last_error"]


def test_a_refused_event_is_a_dead_letter_at_once(website, platform, platform_api, api_token):
    # The platform API wants an email on every engagement; an anonymous vote is refused (422).
    add_rows(
        website,
        "votes",
        [
            {"email": None, "feature_slug": "sso", "value": 1},
            {"email": "v@example.com", "feature_slug": "sso", "value": 1},
        ],
    )
    with api_client(platform_api, api_token) as client:
        report = api_sync(website, platform, client, "votes")

    assert (report.synced, report.dead, report.failed) == (1, 1, 0)
    assert "answered 422" in report.dead_letters[0].reason
    assert posts(platform_api) == [422, 201]


def test_a_wrong_token_stops_the_run_without_showing_the_token(website, platform, platform_api):
    add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    with (
        api_client(platform_api, "not-the-token") as client,
        pytest.raises(PlatformApiError, match="answered 401") as raised,
    ):
        api_sync(website, platform, client)
    assert "not-the-token" not in str(raised.value)
    assert platform_api.created("leads") == []


def test_a_hung_request_times_out_and_is_retried(website, platform, platform_api, api_token):
    add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    platform_api.add_fault(Fault("hang", path=LEADS_PATH, seconds=30, count=1))
    started = time.monotonic()
    with api_client(platform_api, api_token, timeout_s=0.3) as client:
        report = api_sync(website, platform, client)

    assert report.synced == 1 and len(platform_api.created("leads")) == 1
    assert time.monotonic() - started < 20  # did not wait for the 30 s hang to end


def test_requests_are_paced_client_side() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacer = Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait()
    assert waits == [0.25, 0.25, 0.25, 0.25]  # the first goes at once, then 4 per second


def test_retry_after_prefers_milliseconds_and_reads_http_dates() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "2"}) == 1.5
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
