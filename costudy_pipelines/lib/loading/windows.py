"""How a run over day partitions becomes sync sessions, without Dagster.

- which days a source has data for (source_windows): the partition of its first day reaches
  back to the beginning of time, earlier partitions are skipped;
- one session, one transaction, per day (sync_windows), each soft-deleting what its day no
  longer holds.

The source assets (costudy_pipelines/sources/*/defs.py) and the load-path benchmark both run
these, so the benchmark measures what a materialization runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from itertools import chain

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
) -> Iterator[SyncReport]:
    """One session per (partition, window), the extract's pages streamed in; yields each
    report as its session commits. A failed session raises SyncFailed (later windows are
    not synced; earlier ones stay committed). The sessions share one SessionHost: its
    connections, staging tables and threads are set up once for the run, and each session
    is its own transaction."""
    with SessionHost(connect, spec) as host:
        for key, window in windows:
            yield sync_session(
                host,
                spec,
                chain.from_iterable(extract(window)),
                partition=key,
                run_id=run_id,
                window=window,
                force_delete=force_delete,
                max_delete_share=max_delete_share,
                options=options,
            )
