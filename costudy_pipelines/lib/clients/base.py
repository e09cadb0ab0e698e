"""What every reader shares: the time window of a daily partition, timestamps, bounded chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

Record = dict[str, Any]
Page = list[Record]

T = TypeVar("T")


@dataclass(frozen=True)
class TimeWindow:
    """A half-open interval [start, end) of aware datetimes: one partition's slice of a source.

    Dagster's ``context.partition_time_window`` converts with ``TimeWindow(w.start, w.end)``.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"time window bounds must carry a time zone: {self!r}")
        if self.start >= self.end:
            raise ValueError(f"time window is empty: start {self.start} is not before {self.end}")

    @classmethod
    def day(cls, day: date | str, tz: str = "UTC") -> TimeWindow:
        """The calendar day `day` (a date or YYYY-MM-DD) in time zone `tz`."""
        if isinstance(day, str):
            day = date.fromisoformat(day)
        zone = ZoneInfo(tz)
        start = datetime.combine(day, time(), zone)
        end = datetime.combine(day + timedelta(days=1), time(), zone)
        return cls(start, end)

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def parse_timestamp(value: object) -> datetime | None:
    """An aware UTC datetime from an ISO-8601 string (``Z`` allowed) or Unix epoch seconds/ms.

    Returns None for anything else: the caller keeps such records and validation rejects them.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        # Epoch milliseconds are 13 digits today; seconds are 10. 1e11 s is the year 5138.
        seconds = value / 1000 if abs(value) >= 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def in_window(records: Iterable[Record], field: str, window: TimeWindow) -> Page:
    """The records whose `field` timestamp lies in `window`.

    Records whose timestamp cannot be parsed are kept, never dropped: validation downstream
    rejects them with a reason an operator can see.
    """
    kept = []
    for record in records:
        moment = parse_timestamp(record.get(field))
        if moment is None or window.contains(moment):
            kept.append(record)
    return kept


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most `size` items, in order; never an empty list."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
