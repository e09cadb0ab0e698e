"""Revenue totals of the finance views, an independent sum of the source tables, and the two
reconciled per source and currency to the cent.

The source sums restate the revenue rules (sql/views/revenue_lines.sql) directly on the
source tables, table by table: the views must agree with them, so a view that double counts
(a join that fans out), drops rows or mixes currencies is caught, whoever wrote it.
Currencies are grouping keys everywhere: no total ever adds two currencies together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import psycopg
from psycopg import sql

CENT = Decimal("0.01")
ALL_SOURCES = "all sources"
NO_CURRENCY = "(none)"

# The revenue rules, one aggregate per source table: (source, currency, items, gross, refunded).
SOURCE_TOTALS_SQL = """
select 'whop_payments', upper(btrim(currency)), count(*), sum(amount),
       sum(coalesce(refunded_amount, 0))
from whop_payments
where deleted_at is null and lower(btrim(status)) = 'paid' and amount is not null
group by 2
union all
select 'sheet_rows', coalesce(currency, 'USD'), count(*), sum(amount), 0
from sheet_rows
where deleted_at is null and amount is not null
group by 2
union all
select 'elective_rows', coalesce(upper(nullif(btrim(currency), '')), 'USD'), count(*),
       sum(amount), 0
from elective_rows
where deleted_at is null and lower(btrim(status)) = 'approved' and amount is not null
group by 2
union all
select 'course_orders', upper(btrim(currency)), count(*), sum(amount), 0
from course_orders
where deleted_at is null and lower(btrim(status)) = 'paid' and amount is not null
group by 2
"""

# What each finance view totals to, in the same shape. revenue_by_user has no source column:
# it reconciles per currency over all sources.
VIEW_TOTALS_SQL = {
    "revenue_lines": "select source, currency, count(*), sum(gross), sum(refunded)"
    " from revenue_lines group by 1, 2",
    "revenue_by_user_day": "select source, currency, sum(items), sum(gross), sum(refunded)"
    " from revenue_by_user_day group by 1, 2",
    "revenue_by_user": f"select '{ALL_SOURCES}', currency, sum(items), sum(gross), sum(refunded)"
    " from revenue_by_user group by 2",
}


@dataclass(frozen=True)
class Totals:
    source: str
    currency: str | None
    items: int
    gross: Decimal
    refunded: Decimal

    @property
    def net(self) -> Decimal:
        return self.gross - self.refunded

    @property
    def key(self) -> tuple[str, str]:
        return self.source, self.currency or NO_CURRENCY


@dataclass(frozen=True)
class Difference:
    """One (source, currency) whose view and source totals differ (None: absent on that side)."""

    source: str
    currency: str
    view: Totals | None
    sources: Totals | None

    def describe(self) -> str:
        def show(totals: Totals | None) -> str:
            if totals is None:
                return "absent"
            return f"{totals.items} items, net {totals.net:.2f}"

        return (
            f"{self.source} {self.currency}: view {show(self.view)}, sources {show(self.sources)}"
        )


def _totals(rows: list[tuple]) -> list[Totals]:
    return [
        Totals(source, currency, int(items), Decimal(gross or 0), Decimal(refunded or 0))
        for source, currency, items, gross, refunded in rows
    ]


def source_totals(conn: psycopg.Connection) -> list[Totals]:
    """Revenue per source and currency, summed from the source tables themselves."""
    return _totals(conn.execute(SOURCE_TOTALS_SQL).fetchall())


def view_totals(conn: psycopg.Connection, view: str) -> list[Totals]:
    """Revenue per source and currency as the finance view `view` totals it."""
    if view not in VIEW_TOTALS_SQL:
        raise ValueError(f"{view!r} is not a finance view: {', '.join(VIEW_TOTALS_SQL)}")
    return _totals(conn.execute(VIEW_TOTALS_SQL[view]).fetchall())


def across_sources(totals: list[Totals]) -> list[Totals]:
    """The same totals per currency only (the shape of revenue_by_user)."""
    merged: dict[str | None, Totals] = {}
    for total in totals:
        seen = merged.get(total.currency)
        merged[total.currency] = Totals(
            ALL_SOURCES,
            total.currency,
            total.items + (seen.items if seen else 0),
            total.gross + (seen.gross if seen else 0),
            total.refunded + (seen.refunded if seen else 0),
        )
    return list(merged.values())


def _same(a: Totals | None, b: Totals | None) -> bool:
    if a is None or b is None:
        return a is b
    return (
        a.items == b.items
        and a.gross.quantize(CENT) == b.gross.quantize(CENT)
        and a.refunded.quantize(CENT) == b.refunded.quantize(CENT)
    )


def differences(view: list[Totals], sources: list[Totals]) -> list[Difference]:
    """(source, currency) pairs whose item count, gross or refunded differ to the cent."""
    by_view = {total.key: total for total in view}
    by_source = {total.key: total for total in sources}
    return [
        Difference(key[0], key[1], by_view.get(key), by_source.get(key))
        for key in sorted(by_view.keys() | by_source.keys())
        if not _same(by_view.get(key), by_source.get(key))
    ]


def reconcile(conn: psycopg.Connection, view: str) -> tuple[list[Totals], list[Difference]]:
    """The view's totals and where they differ from the source tables (empty: reconciled).

    Both sides are read in one REPEATABLE READ snapshot, so a sync committing meanwhile
    cannot make them disagree.
    """
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        totals = view_totals(conn, view)
        expected = source_totals(conn)
    if view == "revenue_by_user":
        expected = across_sources(expected)
    return totals, differences(totals, expected)


def revenue_per_day(
    conn: psycopg.Connection, view: str = "revenue_by_user_day"
) -> dict[str, list[tuple[date, Decimal]]]:
    """Net revenue per UTC day, per currency (days in order; rows without a date left out)."""
    rows = conn.execute(
        sql.SQL(
            "select currency, day, sum(net) from {} where day is not null"
            " group by currency, day order by currency, day"
        ).format(sql.Identifier(view))
    ).fetchall()
    series: dict[str, list[tuple[date, Decimal]]] = {}
    for currency, day, net in rows:
        series.setdefault(currency or NO_CURRENCY, []).append((day, Decimal(net)))
    return series
