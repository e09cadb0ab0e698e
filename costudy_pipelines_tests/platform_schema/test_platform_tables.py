"""Constraints of the platform tables, and the upserts the reverse sync relies on."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from costudy_pipelines_tests.platform_schema.support import add_user, one


@pytest.mark.parametrize("email", ["Upper@Example.com", " padded@example.com", "no-at-sign"])
def test_emails_must_be_normalised(platform: psycopg.Connection, email: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="email_address"):
        add_user(platform, email)


def test_one_user_per_email_and_username(platform: psycopg.Connection) -> None:
    add_user(platform, "ada@example.com", username="Ada")
    with pytest.raises(psycopg.errors.UniqueViolation, match="users_email_key"):
        add_user(platform, "ada@example.com")
    with pytest.raises(psycopg.errors.UniqueViolation, match="users_username_key"):
        add_user(platform, "other@example.com", username="ada")


def test_one_connection_per_pair_whoever_asks(platform: psycopg.Connection) -> None:
    ada = add_user(platform, "ada@example.com")
    bob = add_user(platform, "bob@example.com")
    ask = "insert into connections (requester_id, addressee_id) values (%s, %s)"
    platform.execute(ask, (ada, bob))
    with pytest.raises(psycopg.errors.UniqueViolation, match="connections_one_per_pair"):
        platform.execute(ask, (bob, ada))
    with pytest.raises(psycopg.errors.CheckViolation, match="connections_not_self"):
        platform.execute(ask, (ada, ada))


def test_a_message_goes_to_one_user_or_one_group(platform: psycopg.Connection) -> None:
    ada = add_user(platform, "ada@example.com")
    bob = add_user(platform, "bob@example.com")
    group = platform.execute(
        "insert into groups (name, owner_id) values ('study', %s) returning id", (ada,)
    ).fetchone()[0]
    send = (
        "insert into messages (sender_id, recipient_id, group_id, body) values (%s, %s, %s, 'hi')"
    )
    platform.execute(send, (ada, bob, None))
    platform.execute(send, (ada, None, group))
    for recipient, to_group in [(bob, group), (None, None)]:
        with pytest.raises(psycopg.errors.CheckViolation, match="messages_one_destination"):
            platform.execute(send, (ada, recipient, to_group))


UPSERT_LEAD = """
insert into leads (source_system, source_id, email, name, requested_at)
values ('website', %(id)s, %(email)s, %(name)s, '2024-03-01Z')
on conflict (source_system, source_id) do update
    set email = excluded.email, name = excluded.name
returning id
"""


def test_a_replayed_source_row_updates_its_lead(platform: psycopg.Connection) -> None:
    first = platform.execute(UPSERT_LEAD, {"id": "42", "email": "a@x.io", "name": "A"}).fetchone()
    again = platform.execute(UPSERT_LEAD, {"id": "42", "email": "a@x.io", "name": "A. B."})
    assert again.fetchone() == first
    lead = one(platform, "select name, status, created_at < updated_at as touched from leads")
    assert lead == {"name": "A. B.", "status": "new", "touched": True}


# What each keyed reverse-sync target needs besides its source reference.
REQUIRED = {
    "leads": {"email": "lead@example.com", "requested_at": "2024-03-01Z"},
    "engagements": {"kind": "feature_vote", "subject": "dark-mode", "occurred_at": "2024-03-01Z"},
    "support_tickets": {
        "email": "help@example.com",
        "message": "Hi",
        "submitted_at": "2024-03-01Z",
    },
}


@pytest.mark.parametrize("table", REQUIRED)
def test_source_refs_are_unique_and_paired(platform: psycopg.Connection, table: str) -> None:
    def insert(source_system: str | None, source_id: str | None) -> None:
        values = {**REQUIRED[table], "source_system": source_system, "source_id": source_id}
        platform.execute(
            sql.SQL("insert into {} ({}) values ({})").format(
                sql.Identifier(table),
                sql.SQL(", ").join(map(sql.Identifier, values)),
                sql.SQL(", ").join(sql.Placeholder() * len(values)),
            ),
            list(values.values()),
        )

    insert("website", "1")
    with pytest.raises(psycopg.errors.UniqueViolation, match=f"{table}_source_key"):
        insert("website", "1")
    with pytest.raises(psycopg.errors.CheckViolation, match=f"{table}_source_pair"):
        insert("website", None)
    insert(None, None)  # rows made in the platform itself have no source
    insert(None, None)
    count = platform.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table)))
    assert count.fetchone()[0] == 3


def test_mailing_list_is_one_row_per_address(platform: psycopg.Connection) -> None:
    subscribe = """
        insert into mailing_list (email, subscribed_at, source_system, source_id)
        values (%s, now(), 'website', %s)
        on conflict (email) do update set source_id = excluded.source_id
    """
    platform.execute(subscribe, ("fan@example.com", "7"))
    platform.execute(subscribe, ("fan@example.com", "9"))
    assert platform.execute("select email, source_id from mailing_list").fetchall() == [
        ("fan@example.com", "9")
    ]
    with pytest.raises(psycopg.errors.CheckViolation, match="unsubscribed_at_when_unsubscribed"):
        platform.execute("update mailing_list set status = 'unsubscribed'")
