"""The people migration goes down (its views with it) and up again."""

from __future__ import annotations

import psycopg

from costudy_pipelines.lib.migrations import Target, apply, discover, rollback
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.lib.views import VIEWS_FOLDER, apply_view, read_view
from costudy_pipelines_tests.lib.people.support import PEOPLE_VIEWS

WAREHOUSE = discover(PROJECT_ROOT / "sql" / "warehouse", database="warehouse")
RELATIONS = ["user_match_candidates", "user_links", "user_link_decisions", "people",
             "revenue_by_person"]  # fmt: skip
EXISTS = "select to_regclass(name) is not null from unnest(%s::text[]) as name"


def test_the_migration_rolls_back_with_its_views_and_reapplies(warehouse_url):
    version = next(m.version for m in WAREHOUSE if m.name.endswith("people.sql"))
    target = Target("warehouse", "test", warehouse_url)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for name in PEOPLE_VIEWS:
            apply_view(conn, read_view(VIEWS_FOLDER / f"{name}.sql"))

        def existing() -> list[bool]:
            return [row[0] for row in conn.execute(EXISTS, (RELATIONS,))]

        assert existing() == [True] * 5
        rollback(target, WAREHOUSE, version)
        assert existing() == [False] * 5
        assert conn.execute("select to_regclass('revenue_by_user_day') is not null").fetchone()

        apply(target, WAREHOUSE)
        assert existing() == [True, True, True, False, False]  # the views are their assets'
