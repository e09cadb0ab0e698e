"""The world's ground truth and the warehouse's contents, in one comparable form.

Keys are what identifies a record on both sides:
- sources with ids: the external id, as the warehouse spells it (website rows carry their
  event kind: `vote:17`); platform users by email (the world keys them so; the warehouse by
  the platform's row id, with the email in the raw row);
- sources without ids (sheets, Elective): the engine's row hash and the world's `row_hash`
  hash different bytes (the engine mixes in the worksheet and hashes the record as read), so
  both sides are keyed by the row's content instead: for sheets (spreadsheet, worksheet,
  cells by header), for Elective the sorted non-empty cells (the reader renames columns to
  field names, so only the cells themselves are common to both).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from costudy_pipelines.sandbox.changes import ChangeReport
from costudy_pipelines.sandbox.generators.base import Kind, Record
from costudy_pipelines.sandbox.ground_truth import GroundTruth, ground_truth
from costudy_pipelines.sandbox.people import normalise_email
from costudy_pipelines.sandbox.world import World

# world table of website events -> the event kind that scopes it in website_people
WEBSITE_KINDS = {
    "votes": "vote",
    "demo_requests": "demo_request",
    "email_subscriptions": "email_subscription",
    "contact_submissions": "contact_submission",
}


@dataclass(frozen=True)
class Target:
    """Where a world source lands: its table, and the event kind of its slice (website)."""

    table: str
    event_kind: str | None = None

    @property
    def identity(self) -> tuple[str, ...]:
        """The columns that, with the raw row, make the comparable key."""
        return {"sheet_rows": ("spreadsheet_id", "worksheet"), "elective_rows": ()}.get(
            self.table, ("external_id",)
        )


TARGETS: dict[str, Target] = {
    "whop_users": Target("whop_users"),
    "whop_memberships": Target("whop_memberships"),
    "whop_payments": Target("whop_payments"),
    "ghl_contacts": Target("ghl_contacts"),
    "sheet_rows": Target("sheet_rows"),
    "elective_rows": Target("elective_rows"),
    **{source: Target("website_people", kind) for source, kind in WEBSITE_KINDS.items()},
    "enrollments": Target("course_enrollments"),
    "orders": Target("course_orders"),
    "platform_users": Target("platform_users"),
}
# The world's people sources the warehouse syncs (analytics events are not a source of it).
SYNCED = tuple(TARGETS)
# Words an operator finds in the reject reason of each kind of malformed record.
REASON_WORDS: dict[Kind, tuple[str, ...]] = {
    "missing_email": ("no email",),
    "invalid_email": ("malformed email",),
    "bad_amount": ("amount",),
    "bad_date": ("date", "timestamp", "datetime"),
}
NO_EMAIL_COLUMN_REASON = "no email"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sheet_key(spreadsheet_id: str, worksheet: str, cells: dict[str, str]) -> str:
    return canonical([spreadsheet_id, worksheet, cells])


def cells_key(cells: Iterable[Any]) -> str:
    return canonical(sorted(str(cell) for cell in cells if cell not in (None, "")))


def world_row_key(record: Record) -> str:
    """The comparable key of a world record of a source without ids."""
    if "spreadsheet_id" in record:
        return sheet_key(record["spreadsheet_id"], record["worksheet"], record["values"])
    return cells_key(record["values"].values())


def warehouse_key(source: str, key: str) -> str:
    """A world key (ids sources) as the warehouse spells it."""
    kind = WEBSITE_KINDS.get(source)
    return f"{kind}:{key}" if kind else key


@dataclass
class Expected:
    """What the warehouse must hold for a world: keys and rejects per source, users, names."""

    truth: GroundTruth
    keys: dict[str, set[str]]
    rejects: dict[str, dict[str, Kind]]
    unattributed: dict[str, set[str]]
    users: set[str]
    names: dict[str, tuple[str, str]]  # email -> (name, engine family)


def expected(world: World) -> Expected:
    truth = ground_truth(world, row_key=world_row_key)
    keys = {s: {warehouse_key(s, k) for k in truth.keys[s]} for s in SYNCED}
    rejects = {
        s: {warehouse_key(s, k): kind for k, kind in truth.rejects[s].items()} for s in SYNCED
    }
    platform = {normalise_email(email) for email in truth.keys["platform_users"]}
    return Expected(
        truth,
        keys,
        rejects,
        {s: set(truth.unattributed[s]) for s in SYNCED},
        truth.users([s for s in SYNCED if s != "platform_users"]) | platform,
        {e: (c.name, c.family) for e, c in truth.names.items()},  # the world's family: a source
    )


@dataclass
class Row:
    content_hash: bytes
    live: bool
    raw: Any


@dataclass
class Stored:
    """The warehouse's rows per world source (key -> Row), rejects, users."""

    rows: dict[str, dict[str, Row]] = field(default_factory=lambda: defaultdict(dict))
    rejects: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    users: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    def live_keys(self, source: str) -> set[str]:
        return {key for key, row in self.rows[source].items() if row.live}


def stored(url: str) -> Stored:
    found = Stored()
    with psycopg.connect(url) as conn:
        for source, target in TARGETS.items():
            for key, row in _rows(conn, source, target):
                assert key not in found.rows[source], f"{source}: {key} stored twice"
                found.rows[source][key] = row
        for source, reasons in _rejects(conn).items():
            found.rejects[source] = reasons
        for email, name, name_source in conn.execute("select email, name, name_source from users"):
            found.users[email] = (name, name_source)
    return found


def _rows(conn: psycopg.Connection, source: str, target: Target) -> Iterable[tuple[str, Row]]:
    query = sql.SQL("select {identity} content_hash, deleted_at is null, raw from {table}").format(
        identity=sql.SQL("").join(
            sql.SQL("{}, ").format(sql.Identifier(c)) for c in target.identity
        ),
        table=sql.Identifier(target.table),
    )
    params: tuple[str, ...] = ()
    if target.event_kind:
        query += sql.SQL(" where event_kind = %s")
        params = (target.event_kind,)
    for *identity, content_hash, live, raw in conn.execute(query, params):
        yield _stored_key(source, identity, raw), Row(bytes(content_hash), live, raw)


def _stored_key(source: str, identity: list[Any], raw: dict[str, Any]) -> str:
    if source == "sheet_rows":
        return sheet_key(*identity, raw)
    if source == "elective_rows":
        cells = [raw.get(name) for name in raw if not name.startswith("_")]
        return cells_key([*cells, *raw.get("_extra", {}).values()])
    if source == "platform_users":
        return normalise_email(raw["email"])
    return identity[0]


ENGINE_TO_WORLD = {
    **{f"website_{kind}s": source for source, kind in WEBSITE_KINDS.items()},
    "course_orders": "orders",
    "course_enrollments": "enrollments",
}


def world_source(engine_source: str) -> str:
    """A sync_log / sync_rejects source name (a feed's) as the world calls it: every sheet
    feed is a worksheet of the world's one sheet_rows."""
    if engine_source.startswith("sheet_"):
        return "sheet_rows"
    return ENGINE_TO_WORLD.get(engine_source, engine_source)


def _rejects(conn: psycopg.Connection) -> dict[str, dict[str, str]]:
    """source -> comparable key -> reason, for unresolved rejects."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for source, scope, key, raw, reason in conn.execute(
        "select source, scope, record_key, raw, reason from sync_rejects where resolved_at is null"
    ):
        name = world_source(source)
        if name == "sheet_rows":
            key = sheet_key(scope["spreadsheet_id"], scope["worksheet"], raw)
        elif name == "elective_rows":
            key = _stored_key(name, [], raw)
        found[name][key] = reason
    return found


# -- fingerprint -----------------------------------------------------------------------------

# Columns that record when a reject was last seen and by which run: a re-run sees it again.
SIGHTING_COLUMNS = {"sync_rejects": {"last_seen", "times_seen", "run_id", "sync_log_id"}}
# One row per session: a re-run adds its own (checked separately: they wrote nothing).
LOG_TABLES = {"sync_log"}


def fingerprint(url: str) -> dict[str, str]:
    """md5 per table over every column of every row (row versions included, so a row
    rewritten with the same values still shows), except sighting bookkeeping."""
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'public'"
                " and table_type = 'BASE TABLE' order by 1"
            )
        ]
        result = {}
        for table in tables:
            if table in LOG_TABLES:
                continue
            columns = [
                row[0]
                for row in conn.execute(
                    "select column_name from information_schema.columns"
                    " where table_schema = 'public' and table_name = %s order by ordinal_position",
                    (table,),
                )
                if row[0] not in SIGHTING_COLUMNS.get(table, set())
            ]
            versioned = table not in SIGHTING_COLUMNS  # a sighting rewrites the reject row
            row_text = sql.SQL("row({})::text{}").format(
                sql.SQL(", ").join(sql.Identifier(column) for column in columns),
                sql.SQL(" || xmin::text") if versioned else sql.SQL(""),
            )
            query = sql.SQL(
                "select count(*), md5(coalesce(string_agg({row}, '|' order by {row}), ''))"
                " from {table}"
            ).format(row=row_text, table=sql.Identifier(table))
            count, digest = conn.execute(query).fetchone()
            result[table] = f"{count}:{digest}"
    return result


# -- what a day changed ----------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    added: frozenset[str] = frozenset()
    changed: frozenset[str] = frozenset()
    deleted: frozenset[str] = frozenset()

    def counts(self) -> tuple[int, int, int]:
        return len(self.added), len(self.changed), len(self.deleted)


ROW_HASHED = ("sheet_rows", "elective_rows")


def expected_changes(
    before: Expected, after: Expected, report: ChangeReport, worlds: tuple[World, World]
) -> dict[str, Changes]:
    """What the warehouse must add, rewrite and soft-delete for one advanced day: the world's
    report, restricted to records the warehouse stores (valid ones), seen as the warehouse
    sees them: an edited row of a source without ids is a new row plus a deleted one, and an
    order is rewritten when one of its items changes (its raw row carries the items)."""
    changes = {}
    for source in SYNCED:
        old, new = before.keys[source], after.keys[source]
        changed: set[str] = set()
        if source not in ROW_HASHED:
            changed = {warehouse_key(source, key) for key in report.sources[source].changed}
        if source == "orders":
            changed |= orders_with_changed_items(report, *worlds)
        changes[source] = Changes(
            frozenset(new - old), frozenset(changed & old & new), frozenset(old - new)
        )
    return changes


def orders_with_changed_items(report: ChangeReport, before: World, after: World) -> set[str]:
    items = report.sources["order_items"]
    orders = {str(_item(after, key)["order_id"]) for key in items.changed | items.added}
    return orders | {str(_item(before, key)["order_id"]) for key in items.deleted}


def _item(world: World, key: str) -> Record:
    record = world.record("order_items", int(key) - 1)  # ids are index + 1
    assert record is not None, f"order item {key} is not in the world"
    return record


def stored_changes(before: Stored, after: Stored) -> dict[str, Changes]:
    """What a sync did to the warehouse, per source: rows that became live, rows whose
    content changed, rows that were soft-deleted."""
    changes = {}
    for source in SYNCED:
        old, new = before.live_keys(source), after.live_keys(source)
        rewritten = {
            key
            for key in old & new
            if before.rows[source][key].content_hash != after.rows[source][key].content_hash
        }
        changes[source] = Changes(frozenset(new - old), frozenset(rewritten), frozenset(old - new))
    return changes


def written_by_run(url: str, run_id: str) -> dict[str, tuple[int, int, int]]:
    """(inserted, updated, soft-deleted) per world source, as the run's sync_log rows say."""
    totals: dict[str, tuple[int, int, int]] = defaultdict(lambda: (0, 0, 0))
    with psycopg.connect(url) as conn:
        for source, inserted, updated, deleted in conn.execute(
            "select source, sum(inserted), sum(updated), sum(soft_deleted) from sync_log"
            " where run_id = %s group by source",
            (run_id,),
        ):
            before = totals[world_source(source)]  # a world source may be several feeds (sheets)
            totals[world_source(source)] = (
                before[0] + int(inserted),
                before[1] + int(updated),
                before[2] + int(deleted),
            )
    return totals
