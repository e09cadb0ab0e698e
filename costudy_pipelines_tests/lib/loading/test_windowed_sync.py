"""A day partition is a complete extract of its window: what the window's sync does not see is
soft-deleted, inside the window only, with guards against an extract that came back wrong."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
import pytest

from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.loading import PARTIAL, SUCCESS, LoadSpec, SyncFailed, sync_session
from costudy_pipelines.lib.loading.windows import sync_windows
from costudy_pipelines.sources.sheets.spec import sheet_rows as spec_sheet_rows
from costudy_pipelines.sources.whop.spec import whop_payments as spec_whop_payments
from costudy_pipelines.sources.whop.spec import whop_users as spec_whop_users
from costudy_pipelines_tests.lib.loading.records import whop_payment
from costudy_pipelines_tests.registered import registered

PAYMENTS = registered(spec_whop_payments())
MONDAY, TUESDAY = TimeWindow.day("2025-01-06"), TimeWindow.day("2025-01-07")


def paid_on(day: TimeWindow, count: int, prefix: str = "pay") -> list[dict[str, Any]]:
    """`count` payments created during `day`, by four people."""
    stamp = day.start.date().isoformat()
    return [
        whop_payment(f"{prefix}_{stamp}_{i}", f"p{i % 4}@x.io", created_at=f"{stamp}T0{i % 10}:00Z")
        for i in range(count)
    ]


def sync_day(url: str, day: TimeWindow, records: list[dict[str, Any]], **options: Any):
    return sync_session(
        url, PAYMENTS, records, partition=day.start.date().isoformat(), window=day, **options
    )


def live(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("select external_id from whop_payments where deleted_at is null")
        return {row[0] for row in rows}


def ids(records: list[dict[str, Any]]) -> set[str]:
    return {record["id"] for record in records}


def test_a_day_soft_deletes_what_it_no_longer_sees_and_leaves_other_days_alone(warehouse_url):
    monday, tuesday = paid_on(MONDAY, 30), paid_on(TUESDAY, 30)
    sync_day(warehouse_url, MONDAY, monday)
    sync_day(warehouse_url, TUESDAY, tuesday)

    report = sync_day(warehouse_url, MONDAY, monday[1:])

    assert (report.soft_deleted, report.status) == (1, SUCCESS)
    assert live(warehouse_url) == ids(monday[1:]) | ids(tuesday)
    with psycopg.connect(warehouse_url) as conn:
        details = conn.execute("select details from sync_log order by id desc").fetchone()[0]
    assert details["window"] == {
        "column": "occurred_at",
        "start": "2025-01-06T00:00:00+00:00",
        "end": "2025-01-07T00:00:00+00:00",
    }


def test_an_empty_day_with_nothing_stored_is_a_quiet_day(warehouse_url):
    sync_day(warehouse_url, TUESDAY, paid_on(TUESDAY, 5))
    report = sync_day(warehouse_url, MONDAY, [])
    assert (report.status, report.soft_delete_refused, report.soft_deleted) == (SUCCESS, None, 0)


def test_an_empty_extract_of_a_day_with_rows_is_refused_unless_forced(warehouse_url):
    monday = paid_on(MONDAY, 5)
    sync_day(warehouse_url, MONDAY, monday)

    refused = sync_day(warehouse_url, MONDAY, [])
    assert (refused.status, refused.soft_deleted) == (PARTIAL, 0)
    assert "5 live rows" in refused.soft_delete_refused
    assert "returned no records for the window" in refused.soft_delete_refused
    assert live(warehouse_url) == ids(monday)

    forced = sync_day(warehouse_url, MONDAY, [], force_delete=True)
    assert (forced.status, forced.soft_deleted) == (SUCCESS, 5)


def test_the_delete_share_is_taken_of_the_whole_source_not_of_the_day(warehouse_url):
    """Three of a small day's five rows go: 60 % of the day, 3 % of the source."""
    monday, tuesday = paid_on(MONDAY, 5), paid_on(TUESDAY, 95)
    sync_day(warehouse_url, TUESDAY, tuesday)
    sync_day(warehouse_url, MONDAY, monday)
    assert sync_day(warehouse_url, MONDAY, monday[3:]).soft_deleted == 3

    sync_day(warehouse_url, MONDAY, monday)  # the three are back (revived)
    refused = sync_day(warehouse_url, MONDAY, monday[3:], max_delete_share=0.02)
    assert refused.soft_deleted == 0
    assert "3 of 100 live rows (3.0%)" in refused.soft_delete_refused


def test_a_record_re_dated_into_another_day_is_never_lost(warehouse_url):
    monday = paid_on(MONDAY, 10)
    moved = {**monday[0], "created_at": "2025-01-07T12:00:00Z"}

    # its new day first: the row moves out of Monday's window before Monday is synced
    sync_day(warehouse_url, MONDAY, monday)
    sync_day(warehouse_url, TUESDAY, [moved])
    assert sync_day(warehouse_url, MONDAY, monday[1:]).soft_deleted == 0
    assert live(warehouse_url) == ids(monday)

    # its old day first: soft-deleted there, revived with its new time by its new day
    sync_day(warehouse_url, MONDAY, monday)  # the row is back on Monday
    sync_day(warehouse_url, MONDAY, monday[1:])
    assert live(warehouse_url) == ids(monday[1:])
    revived = sync_day(warehouse_url, TUESDAY, [moved])
    assert (revived.updated, revived.soft_deleted) == (1, 0)
    assert live(warehouse_url) == ids(monday)


def test_a_window_sync_of_a_source_without_a_window_column_is_refused(warehouse_url):
    sheet = registered(spec_sheet_rows("s1", "Sheet1"))
    with pytest.raises(ValueError, match="no window_column"):
        sync_session(warehouse_url, sheet, [], window=MONDAY)
    with pytest.raises(ValueError, match="either full"):
        sync_session(warehouse_url, PAYMENTS, [], full=True, window=MONDAY)


def test_a_window_column_must_be_a_timestamp_of_the_source():
    with pytest.raises(ValueError, match="not a timestamptz column"):
        LoadSpec("p", "whop_payments", PAYMENTS.validator, window_column="status")


def test_rows_without_a_time_are_outside_every_window(warehouse_url):
    users = registered(spec_whop_users())
    undated = {"id": "user_1", "email": "u@x.io", "name": "U", "created_at": None}
    sync_session(warehouse_url, users, [undated], partition="2025-01-06")
    report = sync_session(warehouse_url, users, [], partition="2025-01-06", window=MONDAY)
    assert (report.soft_deleted, report.status) == (0, SUCCESS)


def test_the_days_of_a_run_share_one_connection_and_each_commits_or_fails_alone(warehouse_url):
    """sync_windows: one database session for the run (its staging tables reused), one
    transaction per day: nothing a day staged reaches the next day, a failed day writes
    nothing and the days before it stay committed."""
    wednesday = TimeWindow.day("2025-01-08")
    monday, tuesday = paid_on(MONDAY, 30), paid_on(TUESDAY, 30)
    sync_day(warehouse_url, MONDAY, monday)

    def broken_wednesday() -> Iterator[list[dict[str, Any]]]:
        yield paid_on(wednesday, 10)
        raise RuntimeError("the API went away")

    run = [
        ("monday-again", MONDAY, [monday]),  # every key seen: nothing to delete
        ("monday-less-one", MONDAY, [monday[1:]]),  # the first session's seen keys are gone
        ("tuesday", TUESDAY, [tuesday]),
        ("wednesday", wednesday, broken_wednesday()),
    ]
    planned = iter(run)

    def extract(window: TimeWindow) -> Iterable[list[dict[str, Any]]]:
        _, expected, pages = next(planned)  # asked once per day, in the run's order
        assert window == expected
        return pages

    reports = []
    with pytest.raises(SyncFailed, match="the API went away"):
        windows = [(key, window) for key, window, _ in run]
        for report in sync_windows(warehouse_url, PAYMENTS, windows, extract, run_id="r1"):
            reports.append(report)

    assert [(r.partition, r.soft_deleted, r.inserted) for r in reports] == [
        ("monday-again", 0, 0),
        ("monday-less-one", 1, 0),
        ("tuesday", 0, 30),
    ]
    assert live(warehouse_url) == ids(monday[1:]) | ids(tuesday)  # nothing of wednesday
    with psycopg.connect(warehouse_url) as conn:
        logged = conn.execute(
            "select partition_key, status, backend_pid from sync_log where run_id = 'r1'"
            " order by id"
        ).fetchall()
    assert [(key, status) for key, status, _ in logged] == [
        ("monday-again", SUCCESS),
        ("monday-less-one", SUCCESS),
        ("tuesday", SUCCESS),
        ("wednesday", "FAILED"),
    ]
    assert len({pid for _, _, pid in logged}) == 1
