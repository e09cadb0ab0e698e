"""The direct strategy end to end: website rows in PostgreSQL → platform rows in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from costudy_pipelines.lib.reverse_sync import (
    SyncOptions,
    event_type,
    find_discrepancies,
    sync_event_type,
)
from costudy_pipelines_tests.lib.reverse_sync.support import (
    add_rows,
    count,
    demo_request,
    edit_row,
    rows,
    tracking,
)

DEMO = event_type("demo_requests")


def sync(
    website: psycopg.Connection,
    platform: psycopg.Connection,
    name: str = "demo_requests",
    **options: object,
):
    return sync_event_type(event_type(name), website, platform, SyncOptions(**options))


def test_a_new_demo_request_becomes_exactly_one_lead(website, platform) -> None:
    [source_id] = add_rows(website, "demo_requests", [demo_request("  Ann@Example.COM ")])

    first = sync(website, platform)
    again = sync(website, platform)

    [lead] = rows(platform, "select * from leads")
    assert (lead["email"], lead["source_system"], lead["source_id"]) == (
        "ann@example.com",
        "website",
        str(source_id),
    )
    assert (lead["company"], lead["message"]) == ("Acme", "Show me the product")
    assert (first.synced, first.updated, first.unchanged, first.dead) == (1, 0, 0, 0)
    assert (again.synced, again.updated, again.unchanged) == (0, 0, 1)
    state = tracking(platform, "demo_requests")[str(source_id)]
    assert (state["status"], state["target_id"], state["attempts"]) == (
        "synced",
        str(lead["id"]),
        1,
    )
    audit = rows(platform, "select operation, source_id from reverse_sync_audit order by id")
    assert [a["operation"] for a in audit] == ["create", "run", "run"]
    assert again.last_synced_at is not None


def test_an_edited_demo_request_updates_its_lead(website, platform) -> None:
    [source_id] = add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    sync(website, platform)
    [before] = rows(platform, "select id, company from leads")

    edit_row(website, "demo_requests", source_id, company="Acme GmbH", email="ANN@example.com")
    report = sync(website, platform)

    [after] = rows(platform, "select id, company, email from leads")
    assert after["id"] == before["id"]
    assert (after["company"], after["email"]) == ("Acme GmbH", "ann@example.com")
    assert (report.synced, report.updated, report.unchanged) == (0, 1, 0)
    operations = rows(
        platform,
        "select operation from reverse_sync_audit where source_id = %s order by id",
        (str(source_id),),
    )
    assert [o["operation"] for o in operations] == ["create", "update"]


def test_a_touched_but_unchanged_row_is_not_written_again(website, platform) -> None:
    [source_id] = add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    sync(website, platform)
    edit_row(website, "demo_requests", source_id, status="contacted")  # not a synced column

    report = sync(website, platform)

    assert (report.read, report.unchanged, report.written) == (1, 1, 0)


def test_invalid_emails_become_dead_letters_and_the_rest_lands(website, platform) -> None:
    ids = add_rows(
        website,
        "demo_requests",
        [
            demo_request("ok@example.com"),
            demo_request("not-an-email"),
            demo_request(None),
            demo_request("someone@localhost"),
        ],
    )

    report = sync(website, platform)

    assert (report.synced, report.dead) == (1, 3)
    reasons = {letter.source_id: letter.reason for letter in report.dead_letters}
    # the reasons say what is wrong, never the address (they are shown in Dagster UI metadata)
    assert reasons == {
        str(ids[1]): "malformed email (An email address must have an @-sign.)",
        str(ids[2]): "no email",
        str(ids[3]): "malformed email domain (The part after the @-sign is not valid."
        " It should have a period.)",
    }
    states = tracking(platform, "demo_requests")
    assert {sid: s["status"] for sid, s in states.items()} == {
        str(ids[0]): "synced",
        str(ids[1]): "dead",
        str(ids[2]): "dead",
        str(ids[3]): "dead",
    }
    assert all(states[str(i)]["last_error"] for i in ids[1:])

    rerun = sync(website, platform)
    assert (rerun.unchanged, rerun.dead, rerun.written) == (4, 0, 0)

    edit_row(website, "demo_requests", ids[1], email="fixed@example.com")
    fixed = sync(website, platform)
    assert fixed.synced == 1
    assert count(platform, "leads") == 2


def test_the_lead_is_linked_to_the_platform_user_with_that_email(website, platform) -> None:
    user_id = platform.execute(
        "insert into users (email) values ('ann@example.com') returning id"
    ).fetchone()[0]
    add_rows(
        website, "demo_requests", [demo_request("Ann@example.com"), demo_request("bob@example.com")]
    )

    sync(website, platform)

    linked = rows(platform, "select email, user_id from leads order by email")
    assert [(r["email"], r["user_id"]) for r in linked] == [
        ("ann@example.com", user_id),
        ("bob@example.com", None),
    ]


def test_votes_subscriptions_and_contact_forms_land_in_their_tables(website, platform) -> None:
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    add_rows(
        website,
        "votes",
        [
            {
                "email": "V@example.com",
                "name": "Vee",
                "feature_slug": "dark-mode",
                "value": 1,
                "content": "please",
                "created_at": t0,
                "updated_at": t0,
            },
            {
                "email": None,
                "name": None,
                "feature_slug": "sso",
                "value": -1,
                "content": None,
                "created_at": t0,
                "updated_at": t0,
            },
        ],
    )
    subscriptions = add_rows(
        website,
        "email_subscriptions",
        [
            {
                "email": "Sam@Example.com",
                "name": "Sam",
                "list_name": "news",
                "status": "subscribed",
                "created_at": t0,
                "updated_at": t0,
            },
            {
                "email": " sam@example.COM",
                "name": "Samuel",
                "list_name": "product",
                "status": "unsubscribed",
                "created_at": t0,
                "updated_at": t0 + timedelta(days=1),
            },
        ],
    )
    contacts = add_rows(
        website,
        "contact_submissions",
        [
            {
                "email": "c@example.com",
                "name": "Cee",
                "subject": "Invoice",
                "content": "Where is it?",
            },
            {"email": "d@example.com", "name": "Dee", "subject": "Empty", "content": "   "},
        ],
    )

    reports = {
        name: sync(website, platform, name)
        for name in ("votes", "email_subscriptions", "contact_submissions")
    }

    engagements = rows(
        platform, "select kind, subject, value, email, details from engagements order by subject"
    )
    assert engagements == [
        {
            "kind": "feature_vote",
            "subject": "dark-mode",
            "value": 1,
            "email": "v@example.com",
            "details": {"name": "Vee", "content": "please"},
        },
        {"kind": "feature_vote", "subject": "sso", "value": -1, "email": None, "details": {}},
    ]
    [entry] = rows(platform, "select * from mailing_list")
    assert (entry["email"], entry["name"], entry["status"]) == (
        "sam@example.com",
        "Samuel",
        "unsubscribed",
    )
    assert entry["unsubscribed_at"] == t0 + timedelta(days=1)
    states = tracking(platform, "email_subscriptions")
    assert {states[str(i)]["target_id"] for i in subscriptions} == {str(entry["id"])}
    [ticket] = rows(platform, "select email, subject, message, status from support_tickets")
    assert ticket == {
        "email": "c@example.com",
        "subject": "Invoice",
        "message": "Where is it?",
        "status": "open",
    }
    assert reports["contact_submissions"].dead_letters[0].source_id == str(contacts[1])
    assert reports["contact_submissions"].dead_letters[0].reason == "message is empty"


def test_many_chunks_land_every_event_once(website, platform) -> None:
    add_rows(website, "demo_requests", [demo_request(f"p{n}@example.com") for n in range(23)])
    add_rows(
        website,
        "email_subscriptions",
        [
            {
                "email": f"S{n % 5}@example.com",
                "name": f"n{n}",
                "list_name": "news",
                "status": "subscribed",
            }
            for n in range(17)
        ],
    )

    leads = sync(website, platform, chunk_size=4)
    subscribers = sync(website, platform, "email_subscriptions", chunk_size=4)

    assert (leads.synced, count(platform, "leads")) == (23, 23)
    assert (subscribers.synced, count(platform, "mailing_list")) == (17, 5)
    assert len(tracking(platform, "email_subscriptions")) == 17


def test_a_row_the_platform_refuses_fails_alone_then_becomes_a_dead_letter(
    website, platform
) -> None:
    # A rule the mapping does not know about: only the database catches it.
    platform.execute(
        "alter table leads add constraint no_refused_inc "
        "check (company is distinct from 'Refused Inc')"
    )
    ids = add_rows(
        website,
        "demo_requests",
        [
            demo_request(f"p{n}@example.com", company="Refused Inc" if n == 3 else "Fine")
            for n in range(7)
        ],
    )
    refused = str(ids[3])

    runs = [sync(website, platform, max_attempts=3) for _ in range(4)]

    assert [(r.synced, r.failed, r.dead) for r in runs] == [
        (6, 1, 0),
        (0, 1, 0),
        (0, 0, 1),
        (0, 0, 0),
    ]
    assert count(platform, "leads") == 6
    state = tracking(platform, "demo_requests")[refused]
    assert (state["status"], state["attempts"]) == ("dead", 3)
    assert "no_refused_inc" in state["last_error"]
    audit = rows(
        platform,
        "select operation, attempt from reverse_sync_audit where source_id = %s order by id",
        (refused,),
    )
    assert [(a["operation"], a["attempt"]) for a in audit] == [
        ("failed", 1),
        ("failed", 2),
        ("dead_letter", 3),
    ]


def test_a_crash_before_tracking_is_written_leaves_no_target_either(website, platform) -> None:
    add_rows(website, "demo_requests", [demo_request("ann@example.com")])
    platform.execute("""
        create function crash() returns trigger language plpgsql as
        $$ begin raise exception 'simulated crash'; end $$;
        create trigger crash before insert on reverse_sync_tracking
            for each row execute function crash();
    """)

    with pytest.raises(psycopg.errors.RaiseException, match="simulated crash"):
        sync(website, platform)
    assert count(platform, "leads") == 0

    platform.execute("drop trigger crash on reverse_sync_tracking")
    report = sync(website, platform)
    assert (report.synced, count(platform, "leads")) == (1, 1)


def test_a_dry_run_returns_what_would_be_written_and_writes_nothing(website, platform) -> None:
    ids = add_rows(
        website, "demo_requests", [demo_request("a@example.com"), demo_request("bad email")]
    )

    plan = sync(website, platform, dry_run=True)

    assert (plan.synced, plan.dead) == (1, 1)
    [planned] = plan.planned
    assert (planned.operation, planned.source_id, planned.values["email"]) == (
        "create",
        str(ids[0]),
        "a@example.com",
    )
    for table in ("leads", "reverse_sync_tracking", "reverse_sync_audit"):
        assert count(platform, table) == 0, table

    sync(website, platform)
    edit_row(website, "demo_requests", ids[0], name="Ann B.")
    [lead_before] = rows(platform, "select * from leads")
    plan = sync(website, platform, dry_run=True)
    assert [(p.operation, p.values["name"]) for p in plan.planned] == [("update", "Ann B.")]
    assert plan.unchanged == 1
    assert rows(platform, "select * from leads") == [lead_before]


def test_pushed_deliveries_are_synced_once_and_marked_processed(website, platform) -> None:
    [old] = add_rows(website, "demo_requests", [demo_request("old@example.com")])
    sync(website, platform)
    # A row changed without a fresh updated_at: only the push says it changed.
    website.execute(
        "update demo_requests set company = 'Pushed', "
        "updated_at = updated_at - interval '1 day' where id = %s",
        (old,),
    )
    for delivery in ("d-1", "d-2"):  # the website delivered the same change twice
        platform.execute(
            "insert into reverse_sync_webhook_inbox (delivery_id, event_type, source_id, payload, "
            "signature_verified) values (%s, 'demo_requests', %s, '{}', true)",
            (delivery, str(old)),
        )

    report = sync(website, platform)
    again = sync(website, platform)

    assert (report.updated, again.written) == (1, 0)
    assert rows(platform, "select company from leads") == [{"company": "Pushed"}]
    processed = rows(platform, "select processed_at from reverse_sync_webhook_inbox")
    assert all(row["processed_at"] is not None for row in processed)


def test_discrepancies_name_what_the_platform_does_not_reflect(website, platform) -> None:
    ids = add_rows(
        website,
        "demo_requests",
        [demo_request(f"p{n}@example.com") for n in range(4)] + [demo_request("invalid")],
    )
    before = find_discrepancies(DEMO, website, platform)
    assert (before.checked, before.count, before.by_kind["missing"]) == (5, 5, 5)

    sync(website, platform)
    clean = find_discrepancies(DEMO, website, platform, chunk_size=2)
    assert (clean.count, clean.dead_letters, clean.samples) == (0, 1, [])

    edit_row(website, "demo_requests", ids[0], name="Changed")
    platform.execute("delete from leads where source_id = %s", (str(ids[1]),))
    # A late row: committed with an updated_at far behind the platform's watermark.
    [late] = add_rows(
        website,
        "demo_requests",
        [
            demo_request(
                "late@example.com",
                created_at=datetime(2020, 1, 1, tzinfo=UTC),
                updated_at=datetime(2020, 1, 1, tzinfo=UTC),
            )
        ],
    )
    drift = find_discrepancies(DEMO, website, platform)
    assert dict(drift.by_kind) == {"stale": 1, "target_missing": 1, "missing": 1}
    assert sorted(drift.samples) == sorted(
        [f"{ids[0]}: stale", f"{ids[1]}: target_missing", f"{late}: missing"]
    )

    incremental = sync(website, platform)  # sees the edit, not the late row
    assert (incremental.updated, incremental.synced) == (1, 0)
    full = sync(website, platform, full_refresh=True)
    assert full.synced == 1  # the late row
    # The deleted lead stays deleted: the platform owns deletions; the check keeps naming it.
    assert dict(find_discrepancies(DEMO, website, platform).by_kind) == {"target_missing": 1}
