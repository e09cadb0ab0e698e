"""Probable duplicates on a synced sandbox world, measured against the world's ground truth:
which users are one person (people with two or three addresses across sources, typos and
nicknames in names, names and phones missing in some sources); and the model on every
subset of the features, none of which may break it."""

from __future__ import annotations

import csv
import itertools
import uuid
from pathlib import Path

import pytest

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.people.matching import (
    MIN_TRAINING_PAIRS,
    MatchRun,
    MatchSettings,
    find_candidates,
    score_features_csv,
    score_warehouse,
)
from costudy_pipelines.sandbox.user_features import world_users
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines.sources.registry import load_registry
from costudy_pipelines_tests.harness import DatabaseFactory
from costudy_pipelines_tests.lib.people import febrl
from costudy_pipelines_tests.lib.people.world_sync import measure, sync_world, user_emails

WORLD = WorldConfig(seed=16, people=2_000, days=30)


@pytest.fixture(scope="module")
def world() -> World:
    return World(WORLD)


@pytest.fixture
def synced(world: World, warehouse_url: str, platform_url: str, databases: DatabaseFactory) -> str:
    sync_world(world, warehouse_url, platform=platform_url, new_database=databases.create)
    return warehouse_url


def test_candidates_find_most_same_person_pairs_at_95_percent_precision(
    world: World, synced: str
) -> None:
    identity = load_registry().identity_sources()
    run = MatchRun()
    with (
        pg.connect(synced, source="warehouse") as conn,
        score_warehouse(conn, identity, run=run) as scoring,
    ):
        candidates = list(scoring.candidates())
    measured = measure(world, synced, candidates)
    assert measured.true_pairs > 100, measured  # the world has people with several users
    assert measured.precision >= 0.95, measured
    assert measured.recall >= 0.85, measured
    # the declared features reached the model: phones (Whop, website, GoHighLevel), usernames
    assert {"phone", "username", "email", "first_name", "last_name"} <= set(run.weights)
    assert 0 < run.prior_bounds[0] <= run.prior <= run.prior_bounds[1] < 1  # type: ignore[index]


def test_a_candidate_names_two_users_in_order_and_the_features_that_decided(synced: str) -> None:
    run = MatchRun()
    identity = load_registry().identity_sources()
    with pg.connect(synced, source="warehouse") as conn:
        emails = user_emails(conn)
        with score_warehouse(conn, identity, run=run) as scoring:
            candidates = list(scoring.candidates(threshold=0.5))
            strict = {(c.user_a, c.user_b) for c in scoring.candidates(threshold=0.99)}
            identities = {i.user_id: i for i in scoring.identities()}
    assert run.users == len(emails) == len(identities)
    assert {
        "read_features",
        "prepare",
        "block",
        "compare",
        "train",
        "predict",
    } <= run.seconds.keys()
    assert run.compared_pairs >= len(candidates) > 0
    for candidate in candidates:
        assert candidate.user_a < candidate.user_b
        assert str(candidate.user_a) in emails and str(candidate.user_b) in emails
        assert 0.5 <= candidate.probability <= 1
        assert set(candidate.agreed) <= set(run.weights) and set(candidate.disagreed) <= set(
            run.weights
        )
        assert not set(candidate.agreed) & set(candidate.disagreed)
        assert candidate.agreed  # no pair is probable on nothing
    pairs = [(c.user_a, c.user_b) for c in candidates]
    assert len(pairs) == len(set(pairs))
    # a higher threshold keeps exactly the pairs at or above it
    assert strict == {(c.user_a, c.user_b) for c in candidates if c.probability >= 0.99}
    # phones are normalised to their last ten digits, as compared
    phones = [i.phone for i in identities.values() if i.phone]
    assert phones and all(p.isdigit() and 7 <= len(p) <= 10 for p in phones)


def test_a_warehouse_with_fewer_than_two_users_has_no_candidates(
    warehouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pg.connect(warehouse_url, source="warehouse") as conn:
        assert find_candidates(conn, load_registry().identity_sources()) == []
    assert capsys.readouterr().out == ""


def write_features(path: Path, rows: list[dict[str, str]], columns: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_too_few_pairs_to_train_on_propose_nothing_and_say_why(tmp_path: Path) -> None:
    """Four users: three pairs to compare, far too few to learn weights without labels."""
    people = [
        ("ann@example.com", "Ann Lee"),
        ("ann.lee@work.example", "Ann Lee"),
        ("annie@example.org", "Annie Lee"),
        ("bob@example.com", "Bob Stone"),
    ]
    rows = [{"id": str(uuid.uuid4()), "email": e, "name": n} for e, n in people]
    features = write_features(tmp_path / "features.csv", rows, ["id", "email", "name"])
    run = MatchRun()
    with score_features_csv(features, run=run, scratch=tmp_path) as scoring:
        assert list(scoring.candidates()) == []
        assert len(list(scoring.identities())) == 4
    assert (run.users, run.candidates, run.prior) == (4, 0, None)
    assert run.not_scored is not None and f"at least {MIN_TRAINING_PAIRS}" in run.not_scored


# Each group of columns is one piece of evidence a source may or may not have.
WORLD_GROUPS = {"names": ("name",), "usernames": ("username",), "phones": ("phone",)}
FEBRL_GROUPS = {
    "names": ("first_name", "last_name"),
    "birth_dates": ("birth_date",),
    "localities": ("city", "postcode"),
    "addresses": ("address",),
}
# The model's features each group feeds (names are also read off an email's local part).
FEEDS = {"usernames": {"username"}, "phones": {"phone"}, "birth_dates": {"birth_date"},
         "localities": {"locality"}, "addresses": {"address"}}  # fmt: skip


def subsets(groups: dict[str, tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [drop for k in range(len(groups) + 1) for drop in itertools.combinations(groups, k)]


@pytest.fixture(scope="module")
def world_rows(world: World) -> tuple[list[dict[str, str]], set[tuple[str, str]]]:
    rows, people = [], {}
    for index, user in world_users(world):
        rows.append({"id": str(user.id), "email": user.email, "name": user.name or "",
                     "username": user.username or "", "phone": user.phone or ""})  # fmt: skip
        people.setdefault(index, []).append(str(user.id))
    truth = {pair for ids in people.values() for pair in itertools.combinations(sorted(ids), 2)}
    return rows, truth


@pytest.fixture(scope="module")
def febrl_rows() -> tuple[list[dict[str, str]], set[tuple[str, str]]]:
    found = febrl.records("febrl3")
    users: dict[str, febrl.FebrlRecord] = {}
    for record in found:
        users.setdefault(record.email, record)
    ids = {email: str(uuid.uuid5(uuid.NAMESPACE_URL, email)) for email in users}
    rows = [
        {"id": ids[email], "email": email, "first_name": r.given_name, "last_name": r.surname,
         "birth_date": r.date_of_birth, "city": r.suburb, "postcode": r.postcode,
         "address": r.address}
        for email, r in users.items()
    ]  # fmt: skip
    truth = {
        tuple(sorted((ids[a], ids[b]))) for a, b in febrl.same_person_pairs(febrl.users_of(found))
    }
    return rows, truth  # type: ignore[return-value]


def score_subset(
    tmp_path: Path,
    data: tuple[list[dict[str, str]], set[tuple[str, str]]],
    groups: dict[str, tuple[str, ...]],
    drop: tuple[str, ...],
) -> None:
    """Score the data without the dropped groups' columns: it never fails, never uses a
    feature it lacks, and what it proposes is as precise as with every feature."""
    rows, truth = data
    columns = ["id", "email"] + [c for g, cs in groups.items() if g not in drop for c in cs]
    features = write_features(tmp_path / "features.csv", rows, columns)
    run = MatchRun()
    with score_features_csv(features, run=run, scratch=tmp_path) as scoring:
        found = {tuple(sorted((str(c.user_a), str(c.user_b)))) for c in scoring.candidates()}
    absent = set().union(*(FEEDS.get(group, set()) for group in drop))
    assert not absent & set(run.weights), (drop, run.weights)  # scoring never references them
    assert absent <= set(run.left_out), (drop, run.left_out)  # each left out, with its reason
    if run.not_scored is not None:
        assert found == set() and not run.weights
        return
    assert found, drop
    precision = len(found & truth) / len(found)
    # names and emails alone cannot tell two people of one name apart: a lower floor there
    names_only = not {"birth_dates", "localities", "addresses", "usernames", "phones"} & (
        set(groups) - set(drop)
    )
    assert precision >= (0.9 if names_only else 0.95), (drop, precision, len(found))


@pytest.mark.parametrize("drop", subsets(WORLD_GROUPS), ids=lambda d: "-".join(d) or "all")
def test_the_sandbox_world_without_any_subset_of_its_features(
    tmp_path: Path, world_rows, drop: tuple[str, ...]
) -> None:
    score_subset(tmp_path, world_rows, WORLD_GROUPS, drop)


@pytest.mark.parametrize("drop", subsets(FEBRL_GROUPS), ids=lambda d: "-".join(d) or "all")
def test_febrl_without_any_subset_of_its_features(
    tmp_path: Path, febrl_rows, drop: tuple[str, ...]
) -> None:
    score_subset(tmp_path, febrl_rows, FEBRL_GROUPS, drop)


def test_a_placeholder_shared_by_many_users_pairs_nobody_and_is_reported(
    tmp_path: Path, world_rows
) -> None:
    """A phone typed as 0000000 by a hundred people is a block larger than max_block_size:
    the phone rule skips it (pairs stay bounded) and says so."""
    rows, _ = world_rows
    placeholder = [dict(row, phone="0000000") for row in rows[:100]] + rows[100:]
    features = write_features(tmp_path / "features.csv", placeholder, ["id", "email", "phone"])
    run = MatchRun()
    with score_features_csv(features, run=run, settings=MatchSettings(max_block_size=50)):
        pass
    assert run.skipped_blocks.get("phone") == 1
    assert run.pairs_by_rule["phone"] < 100 * 99 / 2
