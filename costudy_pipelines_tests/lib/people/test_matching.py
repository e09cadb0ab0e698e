"""Probable duplicates on a synced sandbox world, measured against the world's ground truth:
which users are one person (people with two or three addresses across sources, typos and
nicknames in names, names and phones missing in some sources)."""

from __future__ import annotations

import csv
import logging
import uuid
from pathlib import Path

import pytest

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.people.matching import (
    EM_TRAINING_RULES,
    FEATURES,
    MatchRun,
    find_candidates,
    iter_candidates,
    score_features_csv,
)
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines_tests.harness import DatabaseFactory
from costudy_pipelines_tests.lib.people.world_sync import measure, sync_world, user_emails

WORLD = WorldConfig(seed=16, people=2_000, days=30)


@pytest.fixture(scope="module")
def world() -> World:
    return World(WORLD)


@pytest.fixture
def synced(world: World, warehouse_url: str, platform_url: str, databases: DatabaseFactory) -> str:
    sync_world(world, warehouse_url, platform=platform_url, new_database=databases.create)
    return warehouse_url


def test_candidates_find_nine_in_ten_same_person_pairs_at_95_percent_precision(
    world: World, synced: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pg.connect(synced, source="warehouse") as conn:
        candidates = find_candidates(conn)
    measured = measure(world, synced, candidates)
    assert measured.true_pairs > 100, measured  # the world has people with several users
    assert measured.precision >= 0.95, measured
    assert measured.recall >= 0.9, measured
    assert capsys.readouterr().out == ""  # Splink's logging stays off stdout


def test_a_candidate_names_two_users_in_order_and_the_features_that_decided(synced: str) -> None:
    run = MatchRun()
    with pg.connect(synced, source="warehouse") as conn:
        emails = user_emails(conn)
        candidates = list(iter_candidates(conn, threshold=0.5, run=run))
    assert run.candidates == len(candidates) and run.users == len(emails)
    assert {"read_features", "prepare", "train", "predict"} <= run.seconds.keys()
    for candidate in candidates:
        assert candidate.user_a < candidate.user_b
        assert str(candidate.user_a) in emails and str(candidate.user_b) in emails
        assert 0.5 <= candidate.probability <= 1
        assert set(candidate.agreed) <= set(FEATURES) and set(candidate.disagreed) <= set(FEATURES)
        assert not set(candidate.agreed) & set(candidate.disagreed)
        assert candidate.agreed  # no pair is probable on nothing
    pairs = [(c.user_a, c.user_b) for c in candidates]
    assert len(pairs) == len(set(pairs))
    # a higher threshold keeps exactly the pairs at or above it
    with pg.connect(synced, source="warehouse") as conn:
        strict = {(c.user_a, c.user_b) for c in find_candidates(conn, threshold=0.99)}
    assert strict == {(c.user_a, c.user_b) for c in candidates if c.probability >= 0.99}


def test_a_warehouse_with_fewer_than_two_users_has_no_candidates(
    warehouse_url: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with pg.connect(warehouse_url, source="warehouse") as conn:
        assert find_candidates(conn) == []
    assert capsys.readouterr().out == ""
    assert logging.getLogger("splink").level in (logging.NOTSET, logging.WARNING)


def test_too_few_users_to_train_on_propose_nothing_and_say_which_training_failed(
    tmp_path: Path,
) -> None:
    """Four users: EM finds no pair sharing a phone and too few sharing a name to estimate
    from, so no model exists without labels: nothing is proposed, and the run says why."""
    people = [
        ("ann@example.com", "Ann Lee"),
        ("ann.lee@work.example", "Ann Lee"),
        ("annie@example.org", "Annie Lee"),
        ("bob@example.com", "Bob Stone"),
    ]
    features = tmp_path / "features.csv"
    with features.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "email", "name", "username", "phone"])
        writer.writerows([str(uuid.uuid4()), email, name, "", ""] for email, name in people)
    run = MatchRun()
    assert list(score_features_csv(features, run=run, scratch=tmp_path)) == []
    assert (run.users, run.candidates) == (4, 0)
    assert run.untrained == list(EM_TRAINING_RULES)
