"""The review of probable duplicates on a real warehouse: candidates stored, decided, undone;
people and revenue per person following the decisions; decisions surviving a re-sync."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from costudy_pipelines.lib.people import people, review
from costudy_pipelines.lib.people.matching import UserIdentity
from costudy_pipelines_tests.lib.people.support import (
    PAYMENTS,
    candidate,
    load_payments,
    persons,
    prepare,
    revenue_by_person,
    user_ids,
)

ANN, ANN_WORK, ANNIE, BOB = (email for _, email, _, _ in PAYMENTS)


@pytest.fixture
def conn(warehouse_url: str):
    prepare(warehouse_url)
    with psycopg.connect(warehouse_url, autocommit=True) as connection:
        yield connection


def test_accept_joins_two_emails_into_one_person_and_undo_splits_them_again(conn):
    ids = user_ids(conn)
    stored = review.store_candidates(conn, [candidate(ids[ANN], ids[ANN_WORK])])
    assert stored == review.StoreReport(scored=1, removed=0, pending=1, auto_accepted=0)
    [shown] = review.pending(conn)
    assert {shown.email_a, shown.email_b} == {ANN, ANN_WORK}
    assert (shown.probability, shown.agreed, shown.disagreed) == (0.97, ["name"], ["email_local"])
    before = revenue_by_person(conn)
    assert before[(ANN,)] == Decimal(40) and before[(ANN_WORK,)] == Decimal(25)

    [accepted] = review.decide(
        conn, [(ids[ANN_WORK], ids[ANN])], "accepted", by="maria", why="same phone"
    )
    assert (accepted.decision, accepted.previous, accepted.probability) == ("accepted", None, 0.97)
    assert review.pending(conn) == []
    assert [ANN_WORK, ANN] in persons(conn)
    assert len(persons(conn)) == 3  # the users stay four rows, one per email
    assert conn.execute("select count(*) from users").fetchone() == (4,)
    after = revenue_by_person(conn)
    assert after[(ANN_WORK, ANN)] == Decimal(65) and (ANN,) not in after
    assert people.person_of(conn, ids[ANN_WORK]) == people.person_of(conn, ids[ANN])

    [undone] = review.undo(conn, [(ids[ANN], ids[ANN_WORK])], by="maria", why="wrong Ann")
    assert (undone.decision, undone.previous) == ("undone", "accepted")
    assert revenue_by_person(conn) == before
    assert [c.email_a for c in review.pending(conn)] == [shown.email_a]  # pending again
    steps = review.history(conn, ids[ANN], ids[ANN_WORK])
    assert [(s.decision, s.decided_by, s.reason) for s in steps] == [
        ("accepted", "maria", "same phone"),
        ("undone", "maria", "wrong Ann"),
    ]


def test_links_are_transitive_and_each_user_is_in_exactly_one_person(conn):
    ids = user_ids(conn)
    pairs = [(ids[ANN], ids[ANN_WORK]), (ids[ANN_WORK], ids[ANNIE])]
    assert len(review.decide(conn, pairs, "accepted", by="maria", why="one Ann")) == 2

    assert persons(conn) == [[ANN_WORK, ANN, ANNIE], [BOB]]
    person = people.person_of(conn, ids[ANNIE])
    assert person == min((ids[ANN], ids[ANN_WORK], ids[ANNIE]), key=str)  # smallest user id
    assert sorted(people.members(conn, person)) == sorted(ids[e] for e in (ANN, ANN_WORK, ANNIE))
    assert revenue_by_person(conn)[(ANN_WORK, ANN, ANNIE)] == Decimal(75)
    assert people.users_in_two_persons(conn).ok and people.split_links(conn).ok
    found = people.summary(conn)
    assert (found["persons"], found["users_in_multi_user_persons"]) == (2, 3)
    assert found["largest_person_users"] == 3

    review.undo(conn, [(ids[ANN_WORK], ids[ANNIE])], by="maria", why="Annie is her mother")
    assert persons(conn) == [[ANN_WORK, ANN], [ANNIE], [BOB]]


def test_a_rejected_pair_is_never_proposed_again_and_a_new_scoring_replaces_undecided_pairs(conn):
    ids = user_ids(conn)
    first = [candidate(ids[ANN], ids[ANNIE], 0.91), candidate(ids[ANN], ids[BOB], 0.5)]
    review.store_candidates(conn, first)
    review.decide(conn, [(ids[ANN], ids[ANNIE])], "rejected", by="maria", why="two people")
    assert [(c.email_a, c.email_b) for c in review.pending(conn)] == [
        tuple(sorted((ANN, BOB), key=lambda e: str(ids[e])))
    ]

    # re-scored higher, and Ann~Bob no longer proposed: the rejection stands, Ann~Bob goes
    stored = review.store_candidates(conn, [candidate(ids[ANN], ids[ANNIE], 0.99)])
    assert (stored.removed, stored.pending) == (1, 0)
    assert review.pending(conn) == []
    assert conn.execute("select count(*) from user_match_candidates").fetchone() == (1,)
    assert review.link_counts(conn) == {
        "candidates": 1, "pending": 0, "accepted": 0, "rejected": 1, "auto_accepted": 0,
    }  # fmt: skip


def test_deciding_the_same_way_twice_changes_nothing_and_history_is_append_only(conn):
    ids = user_ids(conn)
    pair = [(ids[ANN], ids[BOB])]
    assert len(review.decide(conn, pair, "rejected", by="maria", why="two people")) == 1
    assert review.decide(conn, pair, "rejected", by="joe", why="again") == []
    [changed] = review.decide(conn, pair, "accepted", by="joe", why="Bob is Ann's alias")
    assert changed.previous == "rejected"
    assert [s.decision for s in review.history(conn, *pair[0])] == ["rejected", "accepted"]
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
        conn.execute("delete from user_link_decisions")
    with pytest.raises(ValueError, match="reason"):
        review.decide(conn, pair, "rejected", by="joe", why=" ")
    with pytest.raises(ValueError, match="itself"):
        review.decide(conn, [(ids[ANN], ids[ANN])], "accepted", by="joe", why="x")


def test_decisions_survive_a_resync_that_drops_and_renames(conn, warehouse_url):
    ids = user_ids(conn)
    review.store_candidates(conn, [candidate(ids[ANN], ids[ANN_WORK])])
    review.decide(conn, [(ids[ANN], ids[ANN_WORK])], "accepted", by="maria", why="same card")
    review.decide(conn, [(ids[ANN], ids[BOB])], "rejected", by="maria", why="two people")

    # The next full sync no longer sees Ann's work payment and renames Bob.
    kept = [p for p in PAYMENTS if p[1] not in (ANN_WORK, BOB)]
    load_payments(warehouse_url, [*kept, ("pay_4", BOB, "Robert Stone", 7)])
    assert conn.execute(
        "select count(*) from whop_payments where deleted_at is not null"
    ).fetchone() == (1,)
    assert user_ids(conn) == ids  # users are never deleted or re-keyed
    assert review.link_counts(conn)["accepted"] == 1 and review.link_counts(conn)["rejected"] == 1
    assert [ANN_WORK, ANN] in persons(conn)
    assert revenue_by_person(conn)[(ANN,)] == Decimal(40)  # her work payment is gone, she is not
    assert review.pending(conn) == []


def test_automatic_acceptance_is_off_by_default_and_never_overrides_an_operator(conn):
    ids = user_ids(conn)
    scoring = [candidate(ids[ANN], ids[ANN_WORK], 0.99), candidate(ids[ANN], ids[ANNIE], 0.9)]
    assert review.store_candidates(conn, scoring).auto_accepted == 0
    assert len(review.pending(conn)) == 2

    stored = review.store_candidates(conn, scoring, auto_accept=review.AutoAccept(0.95))
    assert (stored.auto_accepted, stored.pending) == (1, 1)
    [step] = review.history(conn, ids[ANN], ids[ANN_WORK])
    assert (step.decided_by, step.decision, step.probability) == ("auto-accept", "accepted", 0.99)
    assert [ANN_WORK, ANN] in persons(conn)

    review.undo(conn, [(ids[ANN], ids[ANN_WORK])], by="maria", why="check by hand")
    assert (
        review.store_candidates(conn, scoring, auto_accept=review.AutoAccept(0.95)).auto_accepted
        == 0
    )
    assert len(review.pending(conn)) == 2
    with pytest.raises(ValueError, match="auto_accept_above"):
        review.AutoAccept(1.5)


def identity(user, birth_date: str | None = None, phone: str | None = None) -> UserIdentity:
    return UserIdentity(user, birth_date, phone)


def test_automatic_acceptance_never_joins_different_dates_of_birth_or_phones(conn):
    """Ann and Ann at work share a phone; Annie was born on another day: the pair joining
    Annie waits for a person, whatever its score, and the report says why."""
    ids = user_ids(conn)
    identities = [
        identity(ids[ANN], "19900131", "5551234567"),
        identity(ids[ANN_WORK], None, "5551234567"),
        identity(ids[ANNIE], "19900113", None),
        identity(ids[BOB], None, "5559999999"),
    ]
    scoring = [
        candidate(ids[ANN], ids[ANN_WORK], 0.99),
        candidate(ids[ANN_WORK], ids[ANNIE], 0.98),  # would put two dates of birth in one person
        candidate(ids[ANN], ids[BOB], 0.97),  # two phones
    ]
    stored = review.store_candidates(
        conn, scoring, auto_accept=review.AutoAccept(0.9), identities=identities
    )
    assert stored.auto_accepted == 1
    assert stored.held == {"different birth_date": 1, "different phone": 1}
    assert any(ANNIE in sample and "birth_date" in sample for sample in stored.held_samples)
    assert persons(conn) == [[ANN_WORK, ANN], [ANNIE], [BOB]]
    assert len(review.pending(conn)) == 2  # held pairs wait for a person
    stored_identity = conn.execute(
        "select birth_date, phone from user_identity where user_id = %s", [ids[ANN]]
    ).fetchone()
    assert stored_identity == ("19900131", "5551234567")


def test_automatic_acceptance_never_grows_a_person_beyond_max_group_size(conn):
    ids = user_ids(conn)
    chain = [
        candidate(ids[ANN], ids[ANN_WORK], 0.99),
        candidate(ids[ANN_WORK], ids[ANNIE], 0.98),
        candidate(ids[ANNIE], ids[BOB], 0.97),
    ]
    stored = review.store_candidates(
        conn, chain, auto_accept=review.AutoAccept(0.9, max_group_size=3), identities=[]
    )
    assert (stored.auto_accepted, stored.held) == (2, {"person beyond max_group_size 3": 1})
    assert persons(conn) == [[ANN_WORK, ANN, ANNIE], [BOB]]
    # an operator's link counts: a person of three takes nobody more automatically
    assert people.implausible_persons(conn, max_group_size=3).ok
    review.decide(conn, [(ids[ANNIE], ids[BOB])], "accepted", by="maria", why="same card")
    found = people.implausible_persons(conn, max_group_size=3)
    assert found.count == 1 and found.samples[0].startswith("4 users")


def test_automatic_acceptance_wants_an_identifier_beyond_the_name(conn):
    """Two namesakes share a name and an email made of it; nothing else agrees exactly:
    however probable, the pair waits for a person."""
    ids = user_ids(conn)
    scoring = [candidate(ids[ANN], ids[ANNIE], 0.999, corroborated=False)]
    stored = review.store_candidates(conn, scoring, auto_accept=review.AutoAccept(0.9))
    assert (stored.auto_accepted, stored.held) == (0, {review.UNCORROBORATED: 1})
    assert len(review.pending(conn)) == 1


def test_plan_acceptance_takes_the_most_probable_first_and_counts_existing_links():
    strong = {"a": ("1990", None), "b": (None, None), "c": ("1991", None), "d": (None, None)}
    chosen, refused = review.plan_acceptance(
        [("a", "b"), ("b", "c"), ("c", "d")], links=[("a", "d")], strong=strong, max_group_size=4
    )
    assert chosen == [("a", "b")]  # c's 1991 conflicts with a's 1990; d is already a's
    assert refused == [("b", "c", "different birth_date"), ("c", "d", "different birth_date")]
