"""Warehouse rows per daily partition against what the source itself holds or reports.

A partition (a UTC day) is accounted for when every source record created that day is either
stored in the warehouse (live row) or kept as an unresolved reject. The days compared are the
days the warehouse says it synced: partitions of successful sessions in sync_log (all days
once a full sync succeeded), so a backfill in progress is not reported as loss.

- Database sources (website, platform, course): the source's ids and creation days are staged
  into the warehouse (crossdb.stage_query) and compared there per day, with samples of ids
  missing on either side.
- API sources (Whop, GoHighLevel): the source's own count for the day (Whop total_count,
  GoHighLevel search total) comes from the sync's materialization metadata; `warehouse_counts`
  gives the warehouse side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import psycopg
from psycopg import sql

from costudy_pipelines.lib.crossdb import Found, comparison, count_and_sample, stage_query

SYNCED = ("SUCCESS", "PARTIAL")
STAGED = "source_rows"
UNMATCHED = "unmatched_rows"


@dataclass(frozen=True)
class WarehouseFeed:
    """One source's rows in the warehouse: its sync_log name, table and scope.

    `key_prefix` turns a source row id into the warehouse external_id (website events are
    stored as '<event kind>:<id>').
    """

    name: str
    table: str
    scope: Mapping[str, str] = field(default_factory=dict)
    key_prefix: str = ""

    def live_rows(self) -> sql.Composed:
        """Live rows with their key and UTC day, restricted to the feed's scope."""
        conditions = [sql.SQL("deleted_at is null")] + [
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(value))
            for column, value in self.scope.items()
        ]
        return sql.SQL(
            "select external_id as key, (occurred_at at time zone 'UTC')::date as day"
            " from {} where {}"
        ).format(sql.Identifier(self.table), sql.SQL(" and ").join(conditions))


@dataclass(frozen=True)
class SourceTable:
    """Where a database source keeps the rows of a feed."""

    table: str
    created_column: str = "created_at"
    id_column: str = "id"


@dataclass(frozen=True)
class DayCount:
    day: date
    source: int | None  # None: the source reported nothing for the day
    stored: int
    rejected: int

    @property
    def accounted(self) -> int:
        return self.stored + self.rejected

    @property
    def agrees(self) -> bool:
        return self.source is None or self.source == self.accounted


@dataclass(frozen=True)
class CountComparison:
    days: list[DayCount]
    missing_in_warehouse: Found | None = None  # database sources only
    missing_in_source: Found | None = None

    @property
    def differing(self) -> list[DayCount]:
        return [day for day in self.days if not day.agrees]

    @property
    def agrees(self) -> bool:
        missing = (self.missing_in_warehouse, self.missing_in_source)
        return not self.differing and not any(found and found.count for found in missing)


@dataclass(frozen=True)
class SyncedDays:
    """The days a feed was synced: `all_days` once a full sync succeeded."""

    days: frozenset[date]
    all_days: bool

    @property
    def empty(self) -> bool:
        return not self.days and not self.all_days


def synced_days(warehouse: psycopg.Connection, feed: WarehouseFeed) -> SyncedDays:
    rows = warehouse.execute(
        "select distinct partition_key, full_sync from sync_log"
        " where source = %s and status = any(%s)",
        (feed.name, list(SYNCED)),
    ).fetchall()
    days = {day for partition, _ in rows if (day := as_day(partition)) is not None}
    return SyncedDays(frozenset(days), any(full for _, full in rows))


def as_day(partition: str | None) -> date | None:
    """A daily partition key as a date; None for any other key (not compared)."""
    try:
        return date.fromisoformat(partition) if partition else None
    except ValueError:
        return None


def _per_day(rows: list[tuple]) -> dict[date, int]:
    return {date.fromisoformat(day) if isinstance(day, str) else day: int(n) for day, n in rows}


def stored_per_day(
    warehouse: psycopg.Connection, feed: WarehouseFeed, days: list[date] | None
) -> dict[date, int]:
    """Live rows per UTC day of occurred_at (`days` None: every day)."""
    in_days = sql.SQL("true" if days is None else "day = any(%(days)s)")
    query = sql.SQL("select day, count(*) from ({}) w where {} group by day").format(
        feed.live_rows(), in_days
    )
    return _per_day(warehouse.execute(query, {"days": days}).fetchall())


def compare_reported(
    warehouse: psycopg.Connection, feed: WarehouseFeed, reported: Mapping[date, int]
) -> CountComparison:
    """API sources: the count the source reported per day against the warehouse's rows of the
    day plus the unresolved rejects of that partition not stored anyway."""
    days = sorted(reported)
    stored = stored_per_day(warehouse, feed, days)
    rejected = _per_day(
        warehouse.execute(
            sql.SQL(
                "select r.partition_key, count(*) from sync_rejects r"
                " where r.source = %s and r.resolved_at is null and r.partition_key = any(%s)"
                " and not exists (select 1 from ({}) lv where lv.key = r.record_key)"
                " group by r.partition_key"
            ).format(feed.live_rows()),
            (feed.name, [day.isoformat() for day in days]),
        ).fetchall()
    )
    return CountComparison(
        [DayCount(day, reported[day], stored.get(day, 0), rejected.get(day, 0)) for day in days]
    )


def compare_database(
    source: psycopg.Connection,
    source_table: SourceTable,
    warehouse: psycopg.Connection,
    feed: WarehouseFeed,
    synced: SyncedDays,
) -> CountComparison:
    """Database sources: the source's rows of the synced days against the warehouse, per day
    and by id. Both connections in autocommit mode."""
    if synced.empty:
        return CountComparison([])
    created = sql.Identifier(source_table.created_column)
    window: sql.Composable = sql.SQL("")
    params: dict[str, object] = {"prefix": feed.key_prefix}
    if not synced.all_days:
        window = sql.SQL(" where {c} >= %(start)s and {c} < %(end)s").format(c=created)
        params |= {"start": min(synced.days), "end": max(synced.days) + timedelta(days=1)}
    query = sql.SQL(
        "select %(prefix)s || {id}::text, ({created} at time zone 'UTC')::date from {table}{window}"
    ).format(
        id=sql.Identifier(source_table.id_column),
        created=created,
        table=sql.Identifier(source_table.table),
        window=window,
    )
    days = None if synced.all_days else sorted(synced.days)
    with comparison(warehouse):
        stage_query(source, query, params, warehouse, STAGED, {"key": "text", "day": "date"})
        return _compare_staged(warehouse, feed, days)


# Per day of the staged source rows: how many, and how many the warehouse holds only as an
# unresolved reject (a record stored before and rejected since counts once, as stored).
STAGED_PER_DAY_SQL = """
select s.day, count(*), count(*) filter (where exists (
    select 1 from sync_rejects r
    where r.source = %(name)s and r.resolved_at is null and r.record_key = s.key)
    and not exists (select 1 from ({live}) lv where lv.key = s.key))
from {staged} s where {in_days} group by s.day
"""
# Keys on one side only, from one hash full join over the compared days.
UNMATCHED_SQL = """
create temporary table {unmatched} on commit drop as
select s.key as source_key, w.key as warehouse_key
from (select key from {staged} where {in_days}) s
full join (select key from ({live}) lv where {in_days}) w on w.key = s.key
where s.key is null or w.key is null
"""


def _compare_staged(
    warehouse: psycopg.Connection, feed: WarehouseFeed, days: list[date] | None
) -> CountComparison:
    """`days` None: every day either side has."""
    names = {
        "staged": sql.Identifier(STAGED),
        "unmatched": sql.Identifier(UNMATCHED),
        "live": feed.live_rows(),
        "in_days": sql.SQL("true" if days is None else "day = any(%(days)s)"),
    }
    params = {"days": days, "name": feed.name}
    staged = warehouse.execute(sql.SQL(STAGED_PER_DAY_SQL).format(**names), params).fetchall()
    source = {day: (int(rows), int(rejected)) for day, rows, rejected in staged}
    stored = stored_per_day(warehouse, feed, days)
    compared = days if days is not None else sorted((source.keys() | stored.keys()) - {None})
    day_counts = [
        DayCount(day, source.get(day, (0, 0))[0], stored.get(day, 0), source.get(day, (0, 0))[1])
        for day in compared
    ]
    warehouse.execute(sql.SQL(UNMATCHED_SQL).format(**names), params)
    missing_in_warehouse = count_and_sample(
        warehouse,
        sql.SQL(
            "select u.source_key as key from {unmatched} u where u.source_key is not null"
            " and not exists (select 1 from sync_rejects r where r.source = %(name)s"
            " and r.resolved_at is null and r.record_key = u.source_key)"
        ).format(**names),
        params,
    )
    missing_in_source = count_and_sample(
        warehouse,
        sql.SQL(
            "select u.warehouse_key as key from {unmatched} u where u.warehouse_key is not null"
        ).format(**names),
    )
    return CountComparison(day_counts, missing_in_warehouse, missing_in_source)
