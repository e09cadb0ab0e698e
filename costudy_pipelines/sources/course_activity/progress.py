"""The learning-progress view (sql/views/course_learning_progress.sql) against the activity
table it is built from: the table's live rows recounted here, independently of the view, per
(day, user); where the two disagree, how many and a sample (plain Python)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

SAMPLE_SIZE = 20
COMPARISON_SQL = """
with table_side as (
    select (occurred_at at time zone 'UTC')::date as day, user_id,
           count(*) as activities,
           count(*) filter (where activity_type = 'test_completion') as tests,
           max(accuracy) filter (where activity_type = 'test_completion') as best_accuracy
    from course_activity
    where deleted_at is null
    group by 1, 2
)
select coalesce(v.day, t.day)::text || ' ' || coalesce(v.user_id, t.user_id)::text as key,
       count(*) over () as differing
from course_learning_progress v
full join table_side t on t.day = v.day and t.user_id = v.user_id
where v.activities is distinct from t.activities
   or v.tests_completed is distinct from t.tests
   or v.best_accuracy is distinct from t.best_accuracy
order by 1
limit %(sample)s
"""
TOTALS_SQL = """
select (select coalesce(sum(tests_completed), 0) from course_learning_progress),
       (select count(*) from course_activity
         where deleted_at is null and activity_type = 'test_completion')
"""


@dataclass(frozen=True)
class ProgressComparison:
    view_tests: int
    table_tests: int
    differing: int  # (day, user) rows whose figures differ, or present on one side only
    sample: list[str]  # "<day> <user id>" of the first SAMPLE_SIZE of them

    @property
    def agrees(self) -> bool:
        return self.differing == 0 and self.view_tests == self.table_tests


def compare_progress(conn: psycopg.Connection) -> ProgressComparison:
    rows = conn.execute(COMPARISON_SQL, {"sample": SAMPLE_SIZE}).fetchall()
    totals = conn.execute(TOTALS_SQL).fetchone()
    view_tests, table_tests = (int(totals[0]), int(totals[1])) if totals else (0, 0)
    differing = int(rows[0][1]) if rows else 0
    return ProgressComparison(view_tests, table_tests, differing, [row[0] for row in rows])
