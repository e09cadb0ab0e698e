"""Windows, timestamps and chunks shared by every reader."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from costudy_pipelines.lib.clients.base import TimeWindow, chunked, in_window, parse_timestamp


def test_a_day_window_follows_its_time_zone_including_dst() -> None:
    window = TimeWindow.day("2025-03-30", "Europe/Berlin")  # clocks go forward: a 23-hour day
    assert window.start == datetime(2025, 3, 29, 23, tzinfo=UTC)
    assert window.end == datetime(2025, 3, 30, 22, tzinfo=UTC)
    assert window.contains(window.start) and not window.contains(window.end)
    with pytest.raises(ValueError, match="time zone"):
        TimeWindow(datetime(2025, 1, 1), datetime(2025, 1, 2))


def test_timestamps_iso_and_epoch_seconds_or_milliseconds() -> None:
    moment = datetime(2020, 10, 29, 9, 31, 30, 255000, tzinfo=UTC)
    assert parse_timestamp("2020-10-29T09:31:30.255Z") == moment
    assert parse_timestamp(1603963890255) == moment
    assert parse_timestamp(1603963890.255) == moment
    assert parse_timestamp("2020-10-29 09:31:30.255") == moment  # naive means UTC
    for bad in ("yesterday", "", None, True, [], 10**20):
        assert parse_timestamp(bad) is None


def test_in_window_keeps_undated_records_for_validation_to_reject() -> None:
    window = TimeWindow.day("2025-03-02")
    records = [{"at": "2025-03-02T00:00:00Z"}, {"at": "2025-03-03T00:00:00Z"}, {"at": "n/a"}, {}]
    assert in_window(records, "at", window) == [records[0], records[2], records[3]]


def test_chunks_are_bounded_and_never_empty() -> None:
    assert list(chunked(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
    with pytest.raises(ValueError):
        list(chunked([1], 0))
