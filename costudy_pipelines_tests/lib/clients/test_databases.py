"""Database extractors against real PostgreSQL: windows, chunks, snapshots, Unicode."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.clients.databases import TableExtract, extract_pages
from costudy_pipelines.sources.course.client import COURSE_ENROLLMENTS, COURSE_ORDERS
from costudy_pipelines.sources.website.client import EVENT_TABLES

WEBSITE_VOTES = EVENT_TABLES["vote"]

DAY = TimeWindow.day("2025-03-02")
SCHEMA = """
create table votes (id bigint primary key, email text, name text, feature_id int,
                    created_at timestamptz not null);
create table demo_requests (id bigint primary key, email text, name text,
                            created_at timestamptz not null);
create table email_subscriptions (id bigint primary key, email text, name text,
                                  created_at timestamptz not null);
create table contact_submissions (id bigint primary key, email text, name text,
                                  message text, created_at timestamptz not null);
create table orders (id bigint primary key, user_email text, amount numeric(12, 2),
                     currency text, status text, created_at timestamp not null);
create table order_items (id bigint primary key, order_id bigint references orders,
                          course_id int, price numeric(12, 2));
create table enrollments (id bigint primary key, user_email text, course_id int,
                          created_at timestamptz not null);
"""


@pytest.fixture
def engine(fresh_db_url: str) -> Iterator[sa.Engine]:
    engine = pg.make_engine(fresh_db_url, source="TEST_DB_URL")
    with engine.begin() as conn:
        conn.exec_driver_sql(SCHEMA)
        # 48 votes, one every hour from 12 h before the day; ties on created_at at the start.
        base = DAY.start - timedelta(hours=12)
        conn.execute(
            sa.text(
                "insert into votes (id, email, name, feature_id, created_at) "
                "select g, 'voter' || g || '@example.com', 'Zoë O''Brien; --' || g, g % 3, "
                ":base + make_interval(hours => g) from generate_series(1, 48) g"
            ),
            {"base": base},
        )
        conn.execute(
            sa.text("insert into votes values (100, 'tie@example.com', '名前', 1, :s), "
                    "(99, 'tie2@example.com', 'x', 1, :s), (101, 'end@example.com', 'y', 1, :e)"),
            {"s": DAY.start, "e": DAY.end},
        )  # fmt: skip
    yield engine
    engine.dispose()


def ids(pages: list[list[dict]]) -> list[int]:
    return [row["id"] for page in pages for row in page]


def test_a_window_selects_created_at_in_start_inclusive_end_exclusive(engine: sa.Engine) -> None:
    pages = list(extract_pages(engine, WEBSITE_VOTES, DAY, chunk_size=7))
    got = ids(pages)
    hourly = [g for g in range(1, 49) if 12 <= g < 36]
    assert got[:3] == [12, 99, 100]  # three rows tie at the start: ordered by id
    assert sorted(got) == sorted([99, 100, *hourly])
    assert 101 not in got
    assert [len(page) for page in pages] == [7, 7, 7, 5]
    assert all(DAY.contains(row["created_at"]) for page in pages for row in page)


def test_whole_rows_round_trip_unicode_and_metacharacters(engine: sa.Engine) -> None:
    pages = list(extract_pages(engine, WEBSITE_VOTES))
    rows = {row["id"]: row for page in pages for row in page}
    assert len(rows) == 51
    assert rows[100]["name"] == "名前"
    assert rows[5] == {
        "id": 5,
        "email": "voter5@example.com",
        "name": "Zoë O'Brien; --5",
        "feature_id": 2,
        "created_at": DAY.start - timedelta(hours=7),
    }
    assert rows[5]["created_at"].tzinfo is not None
    assert [len(page) for page in extract_pages(engine, WEBSITE_VOTES, chunk_size=50)] == [50, 1]


def test_every_website_table_and_enrollments_extract(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in ("demo_requests", "email_subscriptions"):
            conn.exec_driver_sql(
                f"insert into {table} values (1, 'a@b.co', 'A', '2025-03-02T01:00Z')"
            )
        conn.exec_driver_sql(
            "insert into contact_submissions values (1, 'a@b.co', 'A', 'hi', now())"
        )
        conn.exec_driver_sql(
            "insert into enrollments values (7, 'a@b.co', 3, '2025-03-02T23:59:59Z')"
        )
    counts = {e.table: len(ids(list(extract_pages(engine, e)))) for e in EVENT_TABLES.values()}
    assert counts == {"votes": 51, "demo_requests": 1, "email_subscriptions": 1,
                      "contact_submissions": 1}  # fmt: skip
    [[enrollment]] = list(extract_pages(engine, COURSE_ENROLLMENTS, DAY))
    assert enrollment["course_id"] == 3


def test_orders_come_with_their_items_and_exact_amounts(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "insert into orders values "
            "(1, 'a@b.co', 19.99, 'USD', 'paid', '2025-03-02 00:00:00'),"
            "(2, 'b@b.co', 5.00, 'EUR', 'refunded', '2025-03-02 23:59:59.999'),"
            "(3, 'c@b.co', 1.00, 'USD', 'paid', '2025-03-03 00:00:00');"
            "insert into order_items values (11, 1, 7, 9.99), (10, 1, 8, 10.00)"
        )
    # `timestamp without time zone` is read as UTC even when the session's zone is not:
    # read in New York time, order 2 would fall on the next day.
    new_york = pg.make_engine(
        engine.url.render_as_string(hide_password=False),
        source="TEST_DB_URL",
        connect_args={"options": "-c timezone=America/New_York"},
    )
    pages = list(extract_pages(new_york, COURSE_ORDERS, DAY))
    new_york.dispose()
    orders = [row for page in pages for row in page]
    assert [order["id"] for order in orders] == [1, 2]
    assert orders[0]["amount"] == Decimal("19.99")
    assert orders[0]["order_items"] == [
        {"id": 10, "order_id": 1, "course_id": 8, "price": Decimal("10.00")},
        {"id": 11, "order_id": 1, "course_id": 7, "price": Decimal("9.99")},
    ]
    assert orders[1]["order_items"] == []
    assert orders[0]["created_at"] == datetime(2025, 3, 2)


def test_a_configured_table_name_is_quoted_not_spliced(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'create table "Signups; drop table votes" (id int, created_at timestamptz)'
        )
        conn.exec_driver_sql('insert into "Signups; drop table votes" values (1, now())')
    extract = TableExtract("signups", "Signups; drop table votes")
    assert ids(list(extract_pages(engine, extract))) == [1]
    assert len(ids(list(extract_pages(engine, WEBSITE_VOTES)))) == 51


def test_the_extract_reads_one_snapshot_while_the_table_changes(engine: sa.Engine) -> None:
    pages = extract_pages(engine, WEBSITE_VOTES, chunk_size=10)
    first = next(pages)
    with engine.begin() as conn:
        conn.exec_driver_sql("insert into votes values (500, 'new@x.co', 'n', 1, now())")
        conn.exec_driver_sql("delete from votes where id = 48")
    rest = ids(list(pages))
    got = [row["id"] for row in first] + rest
    assert len(got) == 51 and 500 not in got and 48 in got
