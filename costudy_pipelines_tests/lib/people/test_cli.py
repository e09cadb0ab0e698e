"""`costudy people review|accept|reject|undo|history` on a real warehouse (click's runner on
the CLI's entry function, the warehouse named by the environment as for an operator)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from costudy_pipelines.lib.people import review
from costudy_pipelines_tests.lib.people.support import (
    PAYMENTS,
    candidate,
    persons,
    prepare,
    user_ids,
)
from costudy_pipelines_tests.replay.support import costudy, use_databases

ANN, ANN_WORK, _, BOB = (email for _, email, _, _ in PAYMENTS)


@pytest.fixture
def conn(warehouse_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    prepare(warehouse_url)
    use_databases(monkeypatch, tmp_path, WAREHOUSE_DB_URL=warehouse_url)
    with psycopg.connect(warehouse_url, autocommit=True) as connection:
        yield connection


def test_review_lists_pending_pairs_then_accept_undo_and_reject_record_who_and_why(conn):
    ids = user_ids(conn)
    review.store_candidates(conn, [candidate(ids[ANN], ids[ANN_WORK], 0.97, ("name", "phone"))])

    shown = costudy("people", "review")
    assert shown.exit_code == 0, shown.output
    assert "0.970  " in shown.output and ANN in shown.output and ANN_WORK in shown.output
    assert "agreed:    name, phone" in shown.output and "disagreed: email_local" in shown.output
    assert "1 pending (1 shown), 0 accepted, 0 rejected" in shown.output

    # users named by email in any spelling, or by id
    accepted = costudy("people", "accept", " Ann@Mail.io", str(ids[ANN_WORK]),
                       "--by", "maria", "--why", "same phone")  # fmt: skip
    assert accepted.exit_code == 0, accepted.output
    assert "pending -> accepted (by maria" in accepted.output
    assert [ANN_WORK, ANN] in persons(conn)
    assert "0 pending (0 shown), 1 accepted" in costudy("people", "review").output

    undone = costudy("people", "undo", ANN, ANN_WORK, "--by", "joe", "--why", "not sure")
    assert "accepted -> pending" in undone.output
    assert [ANN_WORK, ANN] not in persons(conn)
    rejected = costudy("people", "reject", ANN, ANN_WORK, "--by", "joe", "--why", "two Anns")
    assert "pending -> rejected" in rejected.output

    told = costudy("people", "history", ANN_WORK, ANN).output
    assert [line.split("  ", 1)[1] for line in told.splitlines()[:3]] == [
        " pending -> accepted  p=0.970  by maria: same phone",
        "accepted -> pending   p=0.970  by joe: not sure",
        " pending -> rejected  p=0.970  by joe: two Anns",
    ]
    assert "3 decision(s)" in told


def test_unknown_users_and_missing_reasons_fail_in_one_line_and_change_nothing(conn):
    unknown = costudy("people", "accept", ANN, "nobody@x.io", "--by", "maria", "--why", "x")
    assert unknown.exit_code == 1
    assert "no user with id or email 'nobody@x.io'" in unknown.output
    missing = costudy("people", "reject", ANN, BOB, "--by", "maria")
    assert missing.exit_code == 2 and "--why" in missing.output
    nothing = costudy("people", "undo", ANN, BOB, "--by", "maria", "--why", "x")
    assert nothing.exit_code == 1 and "no decision to undo" in nothing.output
    assert review.link_counts(conn)["accepted"] == 0
    assert conn.execute("select count(*) from user_link_decisions").fetchone() == (0,)
