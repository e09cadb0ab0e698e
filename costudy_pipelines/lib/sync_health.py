"""The state of every sync, from the sync_health and sync_runs views (sql/views/), as rows and
as a Markdown report an operator reads at a glance."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import psycopg
from psycopg.rows import class_row, dict_row

from costudy_pipelines.lib.charts import bar_cell, sparkline

RECENT_RUNS = 14
RUN_MARKS = {"SUCCESS": "✓", "PARTIAL": "~", "FAILED": "✗", "RUNNING": "…"}
STATUS_ICONS = {"SUCCESS": "🟢", "PARTIAL": "🟡", "RUNNING": "🔵", "FAILED": "🔴", None: "⚪"}


@dataclass
class FeedHealth:
    """One row of the sync_health view; a feed that never ran has only `feed` and `source`."""

    feed: str
    source: str
    last_status: str | None = None
    last_run_at: datetime | None = None
    last_error: str | None = None
    last_success_at: datetime | None = None
    last_success_partition: str | None = None
    last_success_records: int | None = None
    last_success_users: int | None = None
    last_success_duration_s: Decimal | None = None
    last_success_rows_per_s: Decimal | None = None
    runs_7d: int = 0
    failures_7d: int = 0
    users_synced_7d: int = 0
    recent: list[dict] = field(default_factory=list)  # newest last: a sync_runs row's
    # status, rows_per_s, started_at, partition_key


def feed_health(conn: psycopg.Connection, expected: Iterable[str]) -> list[FeedHealth]:
    """Every feed that ran, plus every expected feed (by name) that never did."""
    with conn.cursor(row_factory=class_row(FeedHealth)) as cursor:
        feeds = cursor.execute("select * from sync_health order by feed").fetchall()
    with conn.cursor(row_factory=dict_row) as cursor:
        recent = cursor.execute(
            "select feed, status, rows_per_s, started_at, partition_key from ("
            " select r.*, row_number() over (partition by feed"
            "  order by started_at desc, sync_log_id desc) as age from sync_runs r) newest"
            " where age <= %s order by feed, age desc",
            (RECENT_RUNS,),
        ).fetchall()
    by_feed = {health.feed: health for health in feeds}
    for run in recent:
        by_feed[run["feed"]].recent.append(run)
    seen = {health.feed for health in feeds}
    never = [FeedHealth(name, name) for name in expected if name not in seen]
    return sorted(feeds + never, key=lambda health: health.feed)


def _when(moment: datetime | None) -> str:
    """A moment as a timestamp (a report read later must not say "just now")."""
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def _number(value: Decimal | int | None, unit: str = "", digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def stale(health: FeedHealth, now: datetime, max_age: timedelta) -> bool:
    return health.last_success_at is None or now - health.last_success_at > max_age


def _status_row(feed: FeedHealth) -> str:
    marks = "".join(RUN_MARKS.get(run["status"], "?") for run in feed.recent)
    trend = sparkline([run["rows_per_s"] or 0 for run in feed.recent])
    cells = [
        STATUS_ICONS.get(feed.last_status, "⚪"),
        feed.feed,
        f"{feed.last_status} {_when(feed.last_run_at)}" if feed.last_status else "never",
        _when(feed.last_success_at),
        _number(feed.last_success_rows_per_s),
        _number(feed.last_success_records),
        _number(feed.last_success_users),
        _number(feed.last_success_duration_s, " s", 1),
        str(feed.failures_7d),
        f"`{marks}`" if marks else "–",
        f"`{trend}`" if trend else "–",
    ]
    return "| " + " | ".join(cells) + " |"


def report_markdown(feeds: list[FeedHealth], now: datetime, max_age: timedelta) -> str:
    """A status table of every feed (icon, last run, last success and its age, rows/s, users
    synced, the last runs as marks and a rows/s sparkline), then rows/s of each feed's last
    success as bars."""
    failing = sum(1 for feed in feeds if feed.last_status == "FAILED")
    never = sum(1 for feed in feeds if feed.last_status is None)
    late = sum(1 for feed in feeds if feed.last_status is not None and stale(feed, now, max_age))
    lines = [
        f"**{len(feeds)} feeds · {failing} failing · {late} without a success in the last "
        f"{max_age.total_seconds() / 3600:.0f} h · {never} never synced** "
        f"(as of {now:%Y-%m-%d %H:%M} UTC)",
        "",
        "| | feed | last run | last success | rows/s | records | users | duration "
        f"| failures 7d | last {RECENT_RUNS} runs | rows/s trend |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    lines += [_status_row(feed) for feed in feeds]
    top = max((feed.last_success_rows_per_s or 0 for feed in feeds), default=0)
    lines += ["", "| feed | rows/s of the last success |", "|---|---|"]
    for feed in feeds:
        rate = feed.last_success_rows_per_s
        shown = bar_cell(rate, top, _number(rate)) if rate is not None else "–"
        lines.append(f"| {feed.feed} | {shown} |")
    errors = [
        (feed.feed, feed.last_error)
        for feed in feeds
        if feed.last_status == "FAILED" and feed.last_error
    ]
    if errors:
        lines += ["", "**Last errors**", ""]
        lines += [f"- {name}: {error.splitlines()[0][:300]}" for name, error in errors]
    return "\n".join(lines)
