"""Days pipelined (sync_windows with ReadAhead): while a day loads the next is read, one day
ahead at most; days commit in order, each in its own transaction, and a failed day stops the
range with the days before it kept. Against the real warehouse; the bound is asserted on the
mechanism (what the reader may have begun when), not on timings."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
import pytest

from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.loading import SUCCESS, SyncFailed
from costudy_pipelines.lib.loading.drift import ShapeRecorder
from costudy_pipelines.lib.loading.windows import READ_AHEAD_PAGES, ReadAhead, sync_windows
from costudy_pipelines_tests.lib.loading.records import whop_payment
from costudy_pipelines_tests.lib.loading.test_windowed_sync import PAYMENTS, ids, live, paid_on

DAYS = [(f"2025-01-{day:02d}", TimeWindow.day(f"2025-01-{day:02d}")) for day in range(6, 12)]
Pages = Iterable[list[dict[str, Any]]]


def committed(url: str, run_id: str) -> list[str]:
    """The run's days committed so far, in commit order (sync_log ids follow the RUNNING
    rows; completed_at, set in each day's transaction, orders the commits)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select partition_key from sync_log where run_id = %s and status = %s"
            " order by completed_at, id",
            (run_id, SUCCESS),
        )
        return [row[0] for row in rows]


def test_days_commit_in_order_and_a_day_is_read_only_once_the_one_before_the_last_committed(
    warehouse_url: str,
) -> None:
    days_seen_committed: list[tuple[str, list[str]]] = []

    def extract(window: TimeWindow) -> Pages:
        key = window.start.date().isoformat()
        # when day k's read begins, days 0..k-2 are committed: the reader is never more than
        # one day ahead of the day being loaded
        days_seen_committed.append((key, committed(warehouse_url, "pipelined")))
        return [paid_on(window, 40)[:20], paid_on(window, 40)[20:]]

    reports = list(sync_windows(warehouse_url, PAYMENTS, DAYS, extract, run_id="pipelined"))

    keys = [key for key, _ in DAYS]
    assert [report.partition for report in reports] == keys
    assert [report.inserted for report in reports] == [40] * len(DAYS)
    assert committed(warehouse_url, "pipelined") == keys
    for position, (key, done) in enumerate(days_seen_committed):
        assert key == keys[position]
        assert done[: max(0, position - 1)] == keys[: max(0, position - 1)]
        assert len(done) >= position - 1, (key, done)


def test_a_failed_day_stops_the_range_and_the_days_before_it_stay(warehouse_url: str) -> None:
    asked: list[str] = []

    def extract(window: TimeWindow) -> Iterator[list[dict[str, Any]]]:
        key = window.start.date().isoformat()
        asked.append(key)
        yield paid_on(window, 10)
        if key == DAYS[2][0]:
            raise RuntimeError("the API went away")
        yield paid_on(window, 20)[10:]

    reports = []
    with pytest.raises(SyncFailed, match="the API went away"):
        for report in sync_windows(warehouse_url, PAYMENTS, DAYS, extract, run_id="stops"):
            reports.append(report)

    kept = [DAYS[0][0], DAYS[1][0]]
    assert [report.partition for report in reports] == kept
    assert committed(warehouse_url, "stops") == kept
    assert asked == [key for key, _ in DAYS[:3]]  # nothing read past the failed day
    first_two = paid_on(DAYS[0][1], 20) + paid_on(DAYS[1][1], 20)
    assert live(warehouse_url) == ids(first_two)  # nothing of the failed day
    with psycopg.connect(warehouse_url) as conn:
        failed = conn.execute(
            "select partition_key from sync_log where run_id = 'stops' and status = 'FAILED'"
        ).fetchall()
    assert failed == [(DAYS[2][0],)]


def test_a_failing_load_stops_the_reader_too(warehouse_url: str) -> None:
    """A day whose load fails (the warehouse refuses one of its rows) stops the range; the
    reader, already a day ahead, stops without reading further."""
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "create function refuse_boom() returns trigger language plpgsql as $$ begin"
            " if new.external_id = 'pay_boom' then raise exception 'refused: boom'; end if;"
            " return new; end $$"
        )
        conn.execute(
            "create trigger refuse_boom before insert on whop_payments"
            " for each row execute function refuse_boom()"
        )
    asked: list[str] = []

    def extract(window: TimeWindow) -> Pages:
        key = window.start.date().isoformat()
        asked.append(key)
        if key == DAYS[1][0]:
            return [[whop_payment("pay_boom", "boom@x.io", created_at=f"{key}T01:00Z")]]
        return [paid_on(window, 5)]

    with pytest.raises(SyncFailed, match="refused: boom"):
        list(sync_windows(warehouse_url, PAYMENTS, DAYS, extract, run_id="load-fails"))
    assert committed(warehouse_url, "load-fails") == [DAYS[0][0]]
    assert len(asked) <= 3  # the failed day and, at most, the one read ahead of it


def test_the_reader_holds_one_day_beyond_the_current_one_at_most() -> None:
    """The mechanism itself: the next day is read while the current one is being loaded,
    the one after only once the loader takes the next; a day's waiting pages are a bounded
    queue."""
    began = {key: threading.Event() for key, _ in DAYS}
    finished = {key: threading.Event() for key, _ in DAYS}

    def extract(window: TimeWindow) -> Iterator[list[dict[str, Any]]]:
        key = window.start.date().isoformat()
        began[key].set()
        yield [{"day": key}]
        finished[key].set()

    with ReadAhead(DAYS, extract) as days:
        taken = iter(days)
        key0, _, records0 = next(taken)
        # day 1 is read while day 0 is still unconsumed (being loaded)...
        assert finished[DAYS[1][0]].wait(30)
        # ...and day 2 cannot begin: its slot opens only when the loader takes day 1
        assert (days.started, days.taken) == (2, 1)
        assert not began[DAYS[2][0]].is_set()
        assert list(records0) == [{"day": key0}]
        key1, _, records1 = next(taken)
        assert began[DAYS[2][0]].wait(30)
        assert list(records1) == [{"day": key1}]
        rest = [(key, list(records)) for key, _, records in taken]
    assert [key for key, _ in rest] == [key for key, _ in DAYS[2:]]
    assert days.max_ahead == 1
    assert days.started == days.taken == len(DAYS)


def test_a_days_waiting_pages_are_bounded() -> None:
    """A long day is not read into memory whole ahead of its loading: the reader stops after
    READ_AHEAD_PAGES pages until the loader takes some."""
    produced: list[int] = []

    def extract(window: TimeWindow) -> Iterator[list[dict[str, Any]]]:
        for page in range(10 * READ_AHEAD_PAGES):
            produced.append(page)
            yield [{"page": page}]

    with ReadAhead(DAYS[:1], extract) as days:
        _, _, records = next(iter(days))
        first = next(records)
        assert first == {"page": 0}
        # the reader stops at the bound: it has made at most the queue's pages, plus the one
        # it holds waiting to put, plus the one taken
        while len(produced) < READ_AHEAD_PAGES + 1:
            threading.Event().wait(0.01)
        threading.Event().wait(0.2)
        assert len(produced) <= READ_AHEAD_PAGES + 2
        assert sum(1 for _ in records) == 10 * READ_AHEAD_PAGES - 1


def test_each_days_shape_is_its_own_though_the_next_day_is_read_before_it_is_recorded(
    warehouse_url: str,
) -> None:
    """The shape recorder (shape drift) as sync_daily runs it: each day observed as it is read
    (a day ahead, in the reader's thread), recorded after its session commits; every day's
    sync_log row gets that day's fields, not the next day's."""
    assert PAYMENTS.shape is not None
    recorder = ShapeRecorder(PAYMENTS.shape, None)
    days = DAYS[:4]

    def pages(window: TimeWindow) -> Pages:
        position = [key for key, _ in days].index(window.start.date().isoformat())
        records = paid_on(window, 5 + position)
        return [[record | {f"extra_{position}": "x"} for record in records]]

    def extract(window: TimeWindow) -> Iterator[list[dict[str, Any]]]:
        return recorder.observe(pages(window))

    for report in sync_windows(warehouse_url, PAYMENTS, days, extract, run_id="shapes"):
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            recorder.record(conn, report.sync_log_id)

    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "select partition_key, details -> 'shape' from sync_log where run_id = 'shapes'"
            " order by id"
        ).fetchall()
    assert [key for key, _ in rows] == [key for key, _ in days]
    for position, (_, shape) in enumerate(rows):
        extras = sorted(name for name in shape["fields"] if name.startswith("extra_"))
        assert (extras, shape["records"]) == ([f"extra_{position}"], 5 + position)
