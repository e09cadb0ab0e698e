"""The platform database against the warehouse's copy of its people: four checks from one
comparison in SQL; each fails on exactly the discrepancy injected, with the ids to look at."""

from __future__ import annotations

import dagster as dg
import pytest

from costudy_pipelines.lib.crossdb import SAMPLE_SIZE
from costudy_pipelines.lib.pg import connect
from costudy_pipelines_tests.defs.finance.support import (
    PEOPLE_CHECKS,
    evaluations,
    metadata_value,
    run,
)

CHECKS = (
    "platform_people_in_warehouse",
    "warehouse_people_in_platform",
    "platform_emails_agree",
    "platform_names_agree",
)


def people_checks(dbs, instance) -> dict[str, dg.AssetCheckEvaluation]:
    result = run(dbs, instance, PEOPLE_CHECKS, dg.AssetSelection.checks(*PEOPLE_CHECKS))
    return {name: evaluation for (_, name), evaluation in evaluations(result).items()}


def test_a_clean_platform_agrees_with_the_warehouse(dbs, instance):
    found = people_checks(dbs, instance)
    assert set(found) == set(CHECKS)
    for name, evaluation in found.items():
        assert evaluation.passed, (name, evaluation.metadata)
        assert metadata_value(evaluation, "platform_people") > 0


# Each injection runs on the platform database and returns the id it expects in the sample.
INJECTIONS = {
    "platform_people_in_warehouse": (
        "insert into users (email, name) values ('new.member@example.com', 'New Member')"
        " returning id"
    ),
    "warehouse_people_in_platform": (
        "delete from users where id = (select id from users order by id limit 1) returning id"
    ),
    "platform_emails_agree": "update users set email = 'renamed.' || email"
    " where id = (select id from users order by id limit 1) returning id",
    "platform_names_agree": "update users set name = name || ' Jr.'"
    " where id = (select id from users order by id desc limit 1) returning id",
}


@pytest.mark.parametrize("failing", CHECKS)
def test_each_discrepancy_fails_its_own_check_with_the_id(dbs, instance, failing):
    with connect(dbs.platform, source="PLATFORM_DB_URL", autocommit=True) as platform:
        injected = str(platform.execute(INJECTIONS[failing]).fetchone()[0])
    found = people_checks(dbs, instance)
    assert not found[failing].passed
    assert found[failing].severity == dg.AssetCheckSeverity.WARN
    assert metadata_value(found[failing], "count") == 1
    assert metadata_value(found[failing], "sample_ids") == injected
    assert [name for name, evaluation in found.items() if not evaluation.passed] == [failing]


def test_samples_stop_at_twenty_while_the_count_is_complete(dbs, instance):
    with connect(dbs.platform, source="PLATFORM_DB_URL", autocommit=True) as platform:
        renamed = platform.execute("update users set name = upper(name) || '!'").rowcount
    found = people_checks(dbs, instance)["platform_names_agree"]
    assert metadata_value(found, "count") == renamed > SAMPLE_SIZE
    assert len(metadata_value(found, "sample_ids").split(", ")) == SAMPLE_SIZE
