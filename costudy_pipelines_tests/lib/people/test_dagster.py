"""The Dagster side of the review: the candidates asset, the `people` view asset with its
metadata and checks, and the review_people job driven by run config, on a real warehouse."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg
import pytest

from costudy_pipelines.defs import people as people_defs
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.defs.warehouse_views import view_asset
from costudy_pipelines.lib.people import review
from costudy_pipelines.lib.views import VIEWS_FOLDER, read_view
from costudy_pipelines.sources.config import SourceConfigError, load_sources_config
from costudy_pipelines_tests.lib.people.support import (
    PAYMENTS,
    candidate,
    persons,
    prepare,
    user_ids,
)
from costudy_pipelines_tests.replay.support import op_metadata

ANN, ANN_WORK, ANNIE, BOB = (email for _, email, _, _ in PAYMENTS)
CHECKS = [
    people_defs.no_user_in_two_persons,
    people_defs.accepted_links_within_one_person,
    people_defs.persons_plausible,
]


@pytest.fixture
def warehouse(warehouse_url: str) -> PostgresResource:
    prepare(warehouse_url)
    return PostgresResource(url=warehouse_url, env_var="WAREHOUSE_DB_URL")


def review_run(warehouse: PostgresResource, **config) -> dg.ExecuteInProcessResult:
    job = dg.Definitions(
        jobs=[people_defs.review_people], resources={"warehouse_db": warehouse}
    ).resolve_job_def("review_people")
    return job.execute_in_process(
        run_config={"ops": {"record_decisions": {"config": config}}}, raise_on_error=False
    )


def test_the_review_job_accepts_and_undoes_pairs_named_in_run_config(warehouse):
    with psycopg.connect(warehouse.url, autocommit=True) as conn:
        ids = user_ids(conn)
        review.store_candidates(conn, [candidate(ids[ANN], ids[ANN_WORK])])

    pairs = [[ANN, ANN_WORK], [ANN_WORK, ANNIE]]
    accepted = review_run(warehouse, pairs=pairs, decision="accept", by="maria", why="one Ann")
    assert accepted.success
    shown = op_metadata(accepted, "record_decisions")
    assert (shown["changed"], shown["pending"], shown["accepted"]) == (2, 0, 2)
    assert (shown["persons"], shown["users_in_multi_user_persons"]) == (2, 3)

    undone = review_run(warehouse, pairs=pairs[1:], decision="undo", by="maria", why="mother")
    assert op_metadata(undone, "record_decisions")["accepted"] == 1
    with psycopg.connect(warehouse.url) as conn:
        assert persons(conn) == [[ANN_WORK, ANN], [ANNIE], [BOB]]

    refused = review_run(warehouse, pairs=pairs, decision="reject", by="maria", why="")
    assert not refused.success  # a decision without a reason is refused, nothing written
    with psycopg.connect(warehouse.url) as conn:
        assert review.link_counts(conn)["rejected"] == 0


def test_candidates_asset_reports_decisions_and_people_asset_its_persons_and_checks(warehouse):
    with psycopg.connect(warehouse.url, autocommit=True) as conn:
        ids = user_ids(conn)
        review.decide(conn, [(ids[ANN], ids[ANN_WORK])], "accepted", by="maria", why="same")
        review.decide(conn, [(ids[ANN], ids[BOB])], "rejected", by="maria", why="two people")

    people_view = view_asset(read_view(VIEWS_FOLDER / "people.sql"))
    result = dg.materialize(
        [people_defs.user_match_candidates, people_view, *CHECKS],
        resources={"warehouse_db": warehouse},
        selection=dg.AssetSelection.assets("user_match_candidates", "people"),
    )
    assert result.success
    candidates = result.asset_materializations_for_node("user_match_candidates")[0].metadata
    assert (candidates["accepted"].value, candidates["rejected"].value) == (1, 1)
    assert candidates["auto_accept_above"].value == "off"  # the project's sources.toml
    shown = result.asset_materializations_for_node("people")[0].metadata
    assert (shown["persons"].value, shown["largest_person_users"].value) == (3, 2)
    assert sorted(shown["largest_person_emails"].value) == [ANN_WORK, ANN]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "no_user_in_two_persons": True,
        "accepted_links_within_one_person": True,
        "persons_plausible": True,
    }


def test_auto_accept_is_read_strictly_from_the_people_section(tmp_path: Path):
    project = load_sources_config()
    assert project.people.auto_accept_above is None  # off by default

    def with_people(section: str) -> Path:
        path = tmp_path / "sources.toml"
        path.write_text(project.path.read_text().replace("[people]\n", f"[people]\n{section}\n"))
        return path

    assert (
        load_sources_config(with_people("auto_accept_above = 0.98")).people.auto_accept_above
        == 0.98
    )
    with pytest.raises(SourceConfigError, match=r"\[people\] auto_accept_above: must be a prob"):
        load_sources_config(with_people("auto_accept_above = 1.5"))
    with pytest.raises(SourceConfigError, match=r"unknown key\(s\) \['auto_accept'\]"):
        load_sources_config(with_people("auto_accept = 0.9"))


def test_the_candidates_asset_scores_with_the_configured_auto_acceptance(
    warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    config = tmp_path / "sources.toml"
    text = load_sources_config().path.read_text()
    config.write_text(text.replace("[people]\n", "[people]\nauto_accept_above = 0.95\n"))
    monkeypatch.setenv("COSTUDY_SOURCES_CONFIG", str(config))
    result = dg.materialize(
        [people_defs.user_match_candidates], resources={"warehouse_db": warehouse}
    )
    shown = result.asset_materializations_for_node("user_match_candidates")[0].metadata
    assert shown["auto_accept_above"].value == "0.95"
    assert shown["auto_accepted"].value == shown["auto_accepted_total"].value


def test_revenue_by_person_adds_up_to_revenue_by_user_and_the_check_catches_a_wrong_view(
    warehouse,
):
    with psycopg.connect(warehouse.url, autocommit=True) as conn:
        ids = user_ids(conn)
        review.decide(conn, [(ids[ANN], ids[ANN_WORK])], "accepted", by="maria", why="same")
    view = view_asset(read_view(VIEWS_FOLDER / "revenue_by_person.sql"))
    check = people_defs.adds_up_to_revenue_by_user

    def evaluate() -> dg.AssetCheckEvaluation:  # the check alone, on the view as it stands
        result = dg.materialize(
            [view, check],
            resources={"warehouse_db": warehouse},
            selection=dg.AssetSelection.checks(check),
        )
        [evaluation] = result.get_asset_check_evaluations()
        return evaluation

    assert evaluate().passed
    wrong = (
        (VIEWS_FOLDER / "revenue_by_person.sql")
        .read_text()
        .replace(
            "join people p on p.user_id = d.user_id", "join people p on p.person_id = d.user_id"
        )
    )  # a person's revenue read only from the user whose id the person carries
    with psycopg.connect(warehouse.url, autocommit=True) as conn:
        conn.execute(wrong)
    failed = evaluate()
    assert not failed.passed
    assert failed.metadata["currencies_differing"].value == 1
