"""Choosing a page out of a RecordIndex: a time window, a cursor, a direction, a size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import overload

from costudy_pipelines.sandbox.servers.records import Key, RecordIndex, epoch_us


@dataclass(frozen=True)
class Page:
    """Positions start..stop-1 of an index, presented ascending or descending."""

    index: RecordIndex
    start: int
    stop: int
    descending: bool
    has_next: bool
    has_previous: bool

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def body(self) -> bytes:
        """The records as the inside of a JSON array, in presentation order."""
        if not self.descending:
            return self.index.joined(self.start, self.stop)
        positions = range(self.stop - 1, self.start - 1, -1)
        return b",".join(self.index.record_json(position) for position in positions)

    @property
    def first_key(self) -> Key | None:
        if not len(self):
            return None
        return self.index.keys[self.stop - 1 if self.descending else self.start]

    @property
    def last_key(self) -> Key | None:
        if not len(self):
            return None
        return self.index.keys[self.start if self.descending else self.stop - 1]


def parse_moment(name: str, value: str | None) -> int | None:
    """An ISO-8601 query parameter as epoch microseconds (naive means UTC); ValueError names it."""
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{name} must be an ISO-8601 timestamp, got {value!r}") from None
    return epoch_us(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@overload
def parse_count(name: str, value: str | None, *, default: int, maximum: int) -> int: ...
@overload
def parse_count(name: str, value: str | None, *, default: None, maximum: int) -> int | None: ...
def parse_count(name: str, value: str | None, *, default: int | None, maximum: int) -> int | None:
    """A page-size parameter: an integer >= 0, clamped to the system's maximum."""
    if value is None or value == "":
        return default
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if count < 0:
        raise ValueError(f"{name} must not be negative, got {count}")
    return min(count, maximum)


def cursor_page(
    index: RecordIndex,
    *,
    window: tuple[int | None, int | None] = (None, None),
    after: Key | None = None,
    before: Key | None = None,
    first: int | None = None,
    last: int | None = None,
    descending: bool = False,
) -> Page:
    """Relay-style paging. `window` is (created at or after, created strictly before): adjacent
    daily windows then split the records exactly. `after`/`before` are cursors in presentation
    order; `first` takes from its start, `last` from its end."""
    low = 0 if window[0] is None else index.time_at_or_after(window[0])
    high = len(index) if window[1] is None else index.time_at_or_after(window[1])
    start, stop = low, max(low, high)
    # In descending order "after a key" means smaller keys, so the bounds swap.
    lower_cursor, upper_cursor = (before, after) if descending else (after, before)
    if lower_cursor is not None:
        start = max(start, index.after(lower_cursor))
    if upper_cursor is not None:
        stop = min(stop, index.at_or_after(upper_cursor))
    stop = max(start, stop)
    take_from_low = (first is not None) != descending
    size = first if first is not None else last
    if size is not None:
        if take_from_low:
            stop = min(stop, start + size)
        else:
            start = max(start, stop - size)
    further_up, further_down = stop < high, start > low
    return Page(
        index,
        start,
        stop,
        descending,
        has_next=further_down if descending else further_up,
        has_previous=further_up if descending else further_down,
    )
