"""What the people tests share: users with revenue loaded through the load engine, the people
views in place, and candidates built for those users."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from uuid import UUID

import psycopg

from costudy_pipelines.lib.loading import sync_session
from costudy_pipelines.lib.people.matching import MatchCandidate
from costudy_pipelines.lib.views import VIEWS_FOLDER, apply_view, read_view
from costudy_pipelines.sources.whop.spec import whop_payments
from costudy_pipelines_tests.lib.loading.records import whop_payment
from costudy_pipelines_tests.registered import registered

PEOPLE_VIEWS = [
    "revenue_lines",
    "revenue_by_user_day",
    "revenue_by_user",
    "people",
    "revenue_by_person",
]
# (payment id, email, name, amount): four users, each paying once.
PAYMENTS = [
    ("pay_1", "ann@mail.io", "Ann Lee", 40),
    ("pay_2", "ann.lee@work.io", "Ann Lee", 25),
    ("pay_3", "annie@old.io", "Annie Lee", 10),
    ("pay_4", "bob@mail.io", "Bob Stone", 7),
]


def load_payments(url: str, payments: Iterable[tuple[str, str, str, int]] = PAYMENTS) -> None:
    """A full Whop sync of these payments (the path every sync takes: sync_session); a payment
    the previous sync had and this one lacks is soft-deleted (force_delete: tests shrink)."""
    records = [
        whop_payment(p, email, name=name, amount=amount) for p, email, name, amount in payments
    ]
    sync_session(url, registered(whop_payments()), records, full=True, force_delete=True)


def prepare(url: str) -> None:
    """Users with revenue and the views the people workflow reads."""
    load_payments(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for name in PEOPLE_VIEWS:
            apply_view(conn, read_view(VIEWS_FOLDER / f"{name}.sql"))


def user_ids(conn: psycopg.Connection) -> dict[str, UUID]:
    """email -> users.id."""
    return dict(conn.execute("select email, id from users").fetchall())


def candidate(
    a: UUID,
    b: UUID,
    probability: float = 0.97,
    agreed: tuple[str, ...] = ("name",),
    corroborated: bool = True,
) -> MatchCandidate:
    first, second = sorted((a, b))
    return MatchCandidate(first, second, probability, agreed, ("email_local",), corroborated)


def persons(conn: psycopg.Connection) -> list[list[str]]:
    """The people with their emails, sorted: the grouping as an operator reads it."""
    rows = conn.execute("select array_agg(email) from people group by person_id").fetchall()
    return sorted(sorted(row[0]) for row in rows)


def revenue_by_person(conn: psycopg.Connection) -> dict[tuple[str, ...], Decimal]:
    """Net revenue per person, keyed by the person's paying emails."""
    rows = conn.execute("select emails, net from revenue_by_person").fetchall()
    return {tuple(sorted(emails)): net for emails, net in rows}
