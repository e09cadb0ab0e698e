"""What the source assets share without Dagster (lib/loading/windows.py and the sources'
spec.py): which partitions a source
syncs and from when, one session per day, and the rows of worksheets and Elective exports as
they are loaded."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg

from costudy_pipelines.lib.clients.base import TimeWindow, parse_timestamp
from costudy_pipelines.lib.loading import SUCCESS, sync_session
from costudy_pipelines.lib.loading.windows import (
    BEGINNING_OF_TIME,
    source_windows,
    sync_windows,
    utc_days,
)
from costudy_pipelines.sources.elective.client import ElectiveReader
from costudy_pipelines.sources.elective.spec import READER_COLUMNS, elective_records, elective_rows
from costudy_pipelines.sources.sheets.client import SheetSource, records_from_values
from costudy_pipelines.sources.sheets.spec import sheet_records
from costudy_pipelines.sources.whop.spec import whop_payments as spec_whop_payments
from costudy_pipelines_tests.lib.loading.records import whop_payment
from costudy_pipelines_tests.registered import registered
from costudy_pipelines_tests.sources.elective.test_client import (
    ORDERS_HEADER,
    orders_row,
    write_csv,
)

PARTITIONS_START = date(2025, 1, 1)
WHOP_FIRST_DAY = date(2025, 1, 3)
ELECTIVE = registered(elective_rows(READER_COLUMNS))


def test_a_source_syncs_from_its_first_day_and_its_first_partition_reaches_back() -> None:
    days = list(utc_days(date(2025, 1, 1), date(2025, 1, 5)))
    assert [key for key, _ in days] == [f"2025-01-0{n}" for n in range(1, 6)]

    whop = list(source_windows(days, WHOP_FIRST_DAY, PARTITIONS_START))
    assert [key for key, _ in whop] == ["2025-01-03", "2025-01-04", "2025-01-05"]
    assert whop[0][1] == TimeWindow(BEGINNING_OF_TIME, TimeWindow.day("2025-01-04").start)
    assert [window for _, window in whop[1:]] == [TimeWindow.day("2025-01-04"),
                                                  TimeWindow.day("2025-01-05")]  # fmt: skip

    ghl = list(source_windows(days, PARTITIONS_START, PARTITIONS_START))  # none of its own
    assert len(ghl) == 5 and ghl[0][1].start == BEGINNING_OF_TIME


def test_one_session_per_day_stores_early_records_in_the_first_and_a_rerun_writes_nothing(
    warehouse_url: str,
) -> None:
    stamps = ["2024-06-30T12:00:00Z", "2025-01-03T08:00:00Z", "2025-01-04T23:59:59Z",
              "2025-01-05T00:00:00Z"]  # fmt: skip
    payments = [whop_payment(f"pay_{n}", f"p{n}@x.io", created_at=s) for n, s in enumerate(stamps)]

    def extract(window: TimeWindow) -> list[list[dict]]:  # a server filtering by creation time
        return [[p for p in payments if window.contains(parse_timestamp(p["created_at"]))]]

    def sync() -> list:
        days = utc_days(date(2025, 1, 1), date(2025, 1, 5))
        windows = source_windows(days, WHOP_FIRST_DAY, PARTITIONS_START)
        return list(sync_windows(warehouse_url, registered(spec_whop_payments()), windows, extract))

    first = sync()
    assert [(r.partition, r.records_in, r.inserted) for r in first] == [
        ("2025-01-03", 2, 2),  # the day before the source's first one rides along
        ("2025-01-04", 1, 1),
        ("2025-01-05", 1, 1),
    ]
    assert {r.status for r in first} == {SUCCESS}
    rerun = sync()
    assert [r.written for r in rerun] == [0, 0, 0]
    with psycopg.connect(warehouse_url) as conn:
        stored = conn.execute("select count(*) from whop_payments where deleted_at is null")
        assert stored.fetchone()[0] == 4


def test_worksheet_rows_are_loaded_as_their_cells_without_their_position() -> None:
    source = SheetSource("sheet-key", "Payments")
    values = [["Email", "Name"], ["a@x.io", "Ann"], [], ["b@x.io"]]
    assert list(sheet_records([records_from_values(source, values)])) == [
        {"Email": "a@x.io", "Name": "Ann"},
        {"Email": "b@x.io", "Name": ""},
    ]


def test_a_row_in_two_overlapping_exports_is_stored_once(
    tmp_path: Path, warehouse_url: str
) -> None:
    header = [*ORDERS_HEADER, "Email"]
    rows = [[*orders_row(n), f"buyer{n}@x.io"] for n in range(3)]
    write_csv(tmp_path / "orders-march.csv", header, rows[:2])
    write_csv(tmp_path / "orders-march-and-april.csv", header, rows[1:])
    reader = ElectiveReader(tmp_path)
    scan = reader.scan()

    records = list(elective_records(reader, scan))
    assert len(records) == 4
    assert not any(key in record for record in records for key in ("_file", "_line", "_layout"))

    report = sync_session(warehouse_url, ELECTIVE, records, full=scan.complete)
    assert (report.inserted, report.duplicates, report.rejected) == (3, 1, 0)
