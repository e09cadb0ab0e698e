"""View files (parsing, one transaction per view, clear failures) and the text charts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from costudy_pipelines.lib.charts import bar, daily_bars, sparkline
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.lib.views import (
    ViewApplyError,
    ViewFileError,
    apply_view,
    discover_views,
    read_view,
)

HEADER = (
    "-- Paid whop payments.\n-- More words.\n-- group: finance\n"
    "-- upstream: whop_payments, sheet_*\n"
)


def view_file(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.sql"
    path.write_text(HEADER + body)
    return path


def test_a_view_file_says_its_description_group_and_upstream(tmp_path):
    path = view_file(tmp_path, "paid", "create or replace view paid as select 1 as one;")
    view = read_view(path)
    assert (view.name, view.group) == ("paid", "finance")
    assert view.description == "Paid whop payments. More words."
    assert view.upstream == ("whop_payments", "sheet_*")


def test_every_project_view_file_reads():
    names = {view.name for view in discover_views()}
    assert names == {
        "revenue_lines",
        "revenue_by_user_day",
        "revenue_by_user",
        "sync_runs",
        "sync_health",
        "course_learning_progress",
        "rejects_by_reason",
        "people",
        "revenue_by_person",
    }


@pytest.mark.parametrize(
    ("name", "body", "problem"),
    [
        ("paid", "create or replace view other as select 1;", "does not `create or replace view"),
        ("Paid-View", "create view Paid-View as select 1;", "named <view name>.sql"),
    ],
)
def test_a_file_that_does_not_create_its_view_is_refused(tmp_path, name, body, problem):
    with pytest.raises(ViewFileError, match=problem):
        read_view(view_file(tmp_path, name, body))


def test_a_view_over_missing_tables_fails_clearly_and_leaves_nothing(fresh_db_url, tmp_path):
    view = read_view(
        view_file(tmp_path, "paid", "create or replace view paid as select * from whop_payments;")
    )
    with connect(fresh_db_url, source="WAREHOUSE_DB_URL", autocommit=True) as conn:
        with pytest.raises(ViewApplyError, match=r"paid .* migrations applied"):
            apply_view(conn, view)
        assert conn.execute("select to_regclass('paid')").fetchone()[0] is None


def test_a_failing_replacement_keeps_the_old_view(fresh_db_url, tmp_path):
    good = read_view(view_file(tmp_path, "paid", "create or replace view paid as select 1 as one;"))
    broken = read_view(
        view_file(
            tmp_path,
            "paid",
            "create or replace view paid as select 1 as one;\n"
            "create or replace view paid as select no_such_column from pg_class;",
        )
    )
    with connect(fresh_db_url, source="WAREHOUSE_DB_URL", autocommit=True) as conn:
        apply_view(conn, good)
        with pytest.raises(ViewApplyError, match="no_such_column"):
            apply_view(conn, broken)
        assert conn.execute("select one from paid").fetchone() == (1,)


def test_sparkline_and_bars_scale_to_the_largest_value():
    assert sparkline([0, 1, 2, 4]) == "▁▃▅█"  # heights 0, 1.75, 3.5, 7 of 7, rounded
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([-5, 10]) == "▁█"
    assert bar(10, 10, width=4) == "████"
    assert bar(5, 10, width=4) == "██"
    assert bar(1, 16, width=4) == "▎"  # a quarter cell: 2 of 8 eighths
    assert bar(0, 10) == bar(-3, 10) == ""


def test_daily_chart_keeps_currencies_apart_and_fills_missing_days():
    series = {
        "USD": [(date(2024, 1, 1), Decimal("100.00")), (date(2024, 1, 3), Decimal("50.00"))],
        "EUR": [(date(2024, 1, 2), Decimal("7.50"))],
    }
    chart = daily_bars(series)
    assert "| USD | 2024-01-01 | 2024-01-03 | 150.00 | `█▁▅` |" in chart
    assert "| EUR | 2024-01-02 | 2024-01-02 | 7.50 | `█` |" in chart
    assert "| day | USD | EUR |" in chart
    assert "| 2024-01-02 |  | `████████████████████` 7.50 |" in chart
    assert "157.50" not in chart  # no total across currencies
    assert daily_bars({}) == "_no revenue yet_"
