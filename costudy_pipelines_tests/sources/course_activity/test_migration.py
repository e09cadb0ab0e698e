"""The course_activity migration goes down (its view with it) and up again."""

from __future__ import annotations

import psycopg

from costudy_pipelines.lib.migrations import Target, apply, discover, rollback
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.lib.views import VIEWS_FOLDER, apply_view, read_view

WAREHOUSE = discover(PROJECT_ROOT / "sql" / "warehouse", database="warehouse")
EXISTS = (
    "select to_regclass('course_activity') is not null,"
    " to_regclass('course_learning_progress') is not null"
)


def test_the_migration_rolls_back_with_its_view_and_reapplies(warehouse_url):
    version = next(m.version for m in WAREHOUSE if m.name.endswith("course-activity.sql"))
    target = Target("warehouse", "test", warehouse_url)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        apply_view(conn, read_view(VIEWS_FOLDER / "course_learning_progress.sql"))
        assert conn.execute(EXISTS).fetchone() == (True, True)

        rollback(target, WAREHOUSE, version)
        assert conn.execute(EXISTS).fetchone() == (False, False)
        assert conn.execute("select to_regclass('course_orders') is not null").fetchone()[0]

        apply(target, WAREHOUSE)
        assert conn.execute(EXISTS).fetchone() == (True, False)  # the view is its asset's
