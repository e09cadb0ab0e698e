"""How a run over day partitions becomes sync sessions, without Dagster.

- which days a source has data for (source_windows): the partition of its first day reaches
  back to the beginning of time, earlier partitions are skipped;
- one session, one transaction, per day (sync_windows), each soft-deleting what its day no
  longer holds, committed in the days' order; while day N loads, day N+1 is read from the
  source in a thread of its own (ReadAhead: at most one day beyond the one being loaded).

The source assets (costudy_pipelines/sources/*/defs.py) and the load-path benchmark both run
these, so the benchmark measures what a materialization runs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from costudy_pipelines.lib.clients.base import Page, TimeWindow
from costudy_pipelines.lib.loading.report import SyncReport
from costudy_pipelines.lib.loading.session import ConnectionSource, SessionHost, sync_session
from costudy_pipelines.lib.loading.spec import DEFAULT_OPTIONS, LoadOptions, LoadSpec

# A day's extract: the pages a source returns for one window.
Extract = Callable[[TimeWindow], Iterable[Page]]

# -- day partitions ---------------------------------------------------------------------------

# Where the first partition of a source starts reading: records dated before the source's
# first day, and records whose time the API cannot place (served at the epoch), would
# otherwise fall into no partition's window and be neither stored nor rejected.
BEGINNING_OF_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def source_windows(
    partitions: Iterable[tuple[str, TimeWindow]], first: date, partitions_start: date
) -> Iterator[tuple[str, TimeWindow]]:
    """(partition key, window) of every partition a source whose data starts on `first` has
    data for; the partition of its first day reaches back to BEGINNING_OF_TIME."""
    first_partition = max(first, partitions_start)
    for key, window in partitions:
        if window.end.date() <= first:
            continue
        start = BEGINNING_OF_TIME if window.start.date() <= first_partition else window.start
        yield key, TimeWindow(start, window.end)


def utc_days(first: date, last: date) -> Iterator[tuple[str, TimeWindow]]:
    """(YYYY-MM-DD, window) of every UTC day from `first` to `last`, both included: the
    partitions of a run over those days."""
    for ordinal in range(first.toordinal(), last.toordinal() + 1):
        day = date.fromordinal(ordinal)
        yield day.isoformat(), TimeWindow.day(day)


# -- read-ahead -----------------------------------------------------------------------------

# Pages of one day the reader may hold before the loader takes them: a day's read-ahead is
# bounded by this as well as by the day (a first partition reaching back to the beginning of
# time is not read into memory whole).
READ_AHEAD_PAGES = 32
_POLL_S = 0.1  # how often a blocked reader looks whether the run stopped


class _Stopped(Exception):
    """The run stopped (a day failed, or its caller stopped iterating): the reader quits."""


@dataclass
class _Day:
    """One window's pages, passed from the reading thread to the loading one."""

    key: str
    window: TimeWindow
    pages: queue.Queue[Any] = field(default_factory=lambda: queue.Queue(READ_AHEAD_PAGES))


_END = object()  # the day's last page was read


class ReadAhead:
    """The days' extracts, read in a thread one day ahead of the loader.

    `for key, window, records in ReadAhead(windows, extract):` yields each day in order with
    its records (an iterator over the pages the thread reads). The thread starts reading day
    N+1 as soon as the loader has taken day N, and day N+2 only once the loader has taken
    day N+1: beyond the day being loaded, one day at most is read (a semaphore of one
    slot), and of it at most READ_AHEAD_PAGES pages wait in memory (a bounded queue). An
    extract that fails raises in its own day's records, so the day before it still loads
    and commits. Leaving the loop (a failed day, an early stop) stops the thread and
    waits for it (`close`).
    """

    def __init__(self, windows: Iterable[tuple[str, TimeWindow]], extract: Extract) -> None:
        self._windows = iter(windows)
        self._extract = extract
        self._slot = threading.Semaphore(1)  # the one day the reader may be ahead
        self._days: queue.Queue[_Day | _Failed | None] = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.started = 0  # days the reader began
        self.taken = 0  # days the loader took
        self.max_ahead = 0  # most days begun and not yet taken, ever (1 by construction)
        self._thread = threading.Thread(target=self._read, name="sync-read-ahead", daemon=True)
        self._thread.start()

    # -- the reading thread --------------------------------------------------------------------

    def _read(self) -> None:
        try:
            for key, window in self._windows:
                self._wait(self._slot.acquire)
                day = _Day(key, window)
                with self._lock:
                    self.started += 1
                    self.max_ahead = max(self.max_ahead, self.started - self.taken)
                self._days.put(day)
                self._read_day(day)
        except _Stopped:
            return
        except BaseException as exc:  # the windows themselves failed: the loader raises it
            self._days.put(_Failed(exc))
            return
        self._days.put(None)

    def _read_day(self, day: _Day) -> None:
        pages: Iterable[Any] = ()
        try:
            pages = self._extract(day.window)
            for page in pages:
                self._put(day, page)
        except _Stopped:
            raise
        except BaseException as exc:
            self._put(day, _Failed(exc))
            raise _Stopped from None  # later days are not read: the run stops at this one
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()  # a generator's cleanup (a server-side cursor) runs here, now
        self._put(day, _END)

    def _put(self, day: _Day, item: Any) -> None:
        self._wait(lambda timeout: _put(day.pages, item, timeout))

    def _wait(self, attempt: Callable[..., bool]) -> None:
        while not attempt(timeout=_POLL_S):
            if self._stop.is_set():
                raise _Stopped

    # -- the loading thread --------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[str, TimeWindow, Iterator[Any]]]:
        while True:
            day = self._days.get()
            if day is None:
                return
            if isinstance(day, _Failed):
                raise day.error
            with self._lock:
                self.taken += 1
            self._slot.release()  # the reader may start the next day
            yield day.key, day.window, self._records(day)

    def _records(self, day: _Day) -> Iterator[Any]:
        while (page := day.pages.get()) is not _END:
            if isinstance(page, _Failed):
                raise page.error
            yield from page

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def _put(pages: queue.Queue[Any], item: Any, timeout: float) -> bool:
    try:
        pages.put(item, timeout=timeout)
    except queue.Full:
        return False
    return True


def _read_as_loaded(extract: Extract, window: TimeWindow) -> Iterator[Any]:
    for page in extract(window):
        yield from page


def sync_windows(
    connect: ConnectionSource,
    spec: LoadSpec,
    windows: Iterable[tuple[str, TimeWindow]],
    extract: Extract,
    *,
    run_id: str | None = None,
    force_delete: bool = False,
    max_delete_share: float | None = None,
    options: LoadOptions = DEFAULT_OPTIONS,
    read_ahead: bool = True,
) -> Iterator[SyncReport]:
    """One session per (partition, window), the extract's pages streamed in; yields each
    report as its session commits, in the windows' order. A failed session (its extract
    failed, or its load) raises SyncFailed: later windows are not synced, earlier ones stay
    committed. The sessions share one SessionHost: its connections, staging tables and
    threads are set up once for the run, and each session is its own transaction. While a
    day loads, the next one is read (ReadAhead): the source's requests overlap the
    warehouse's work instead of waiting for it (read_ahead=False: each day read as it loads,
    for comparison)."""
    with SessionHost(connect, spec) as host, ExitStack() as stack:
        if read_ahead:
            days: Iterable[tuple[str, TimeWindow, Iterable[Any]]] = stack.enter_context(
                ReadAhead(windows, extract)
            )
        else:
            days = ((key, window, _read_as_loaded(extract, window)) for key, window in windows)
        for key, window, records in days:
            yield sync_session(
                host,
                spec,
                records,
                partition=key,
                run_id=run_id,
                window=window,
                force_delete=force_delete,
                max_delete_share=max_delete_share,
                options=options,
            )
