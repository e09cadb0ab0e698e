"""The direct strategy: a chunk of events upserted into the platform table in one statement.

`INSERT ... SELECT FROM jsonb_to_recordset(...) ON CONFLICT (<the event type's key>) DO UPDATE
... RETURNING`: a new event creates its row, an edited one updates the same row, a replay
changes nothing twice. Rows of one chunk that share the key (one address subscribing twice) are
reduced to the latest first, since one statement may not update a row twice. The platform user
with the same address is linked in the same statement.

A chunk the platform refuses (a constraint the mapping did not foresee) is split in halves,
each in a savepoint, down to the refused rows: they fail with the database's reason and the
rest of the chunk lands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from costudy_pipelines.lib.reverse_sync.events import EventType
from costudy_pipelines.lib.reverse_sync.tracking import Operation, Outcome, as_jsonb

# What the platform can refuse in a row's content; anything else (connection, locks) is not
# the row's fault and aborts the chunk's transaction instead.
ROW_ERRORS = (psycopg.errors.DataError, psycopg.errors.IntegrityError)


@dataclass(frozen=True)
class Planned:
    """One event to write: its target row and what writing it is (create or update). An update
    knows the id of the record the event became (the API strategy updates that record; the
    direct upsert finds its row by the event type's key)."""

    source_id: str
    fingerprint: str
    source_updated_at: datetime
    operation: Operation
    values: dict[str, Any]
    target_id: str | None = None

    def key(self, event: EventType) -> tuple[str, ...]:
        return tuple(str(self.values[column]) for column in event.conflict)

    def outcome(self, **result: Any) -> Outcome:
        return Outcome(
            self.source_id, self.fingerprint, self.source_updated_at, self.operation, **result
        )


def upsert_statement(event: EventType) -> sql.Composed:
    columns = event.all_target_columns
    names = list(columns)
    target = sql.Identifier(event.target)
    conflict = sql.SQL(", ").join(map(sql.Identifier, event.conflict))
    updates = [
        sql.SQL("{} = {}").format(
            sql.Identifier(name),
            sql.SQL(event.update_expressions[name])
            if name in event.update_expressions
            else sql.SQL("excluded.{}").format(sql.Identifier(name)),
        )
        for name in names
        if name not in event.conflict
    ]
    return sql.SQL(
        """
        insert into {target} as t ({names}, user_id)
        select distinct on ({conflict_i}) {values}, u.id
        from jsonb_to_recordset(%(rows)s) as i(seq integer, {declared})
        left join users as u on u.email = i.email
        order by {conflict_i}, i.seq desc
        on conflict ({conflict}) do update set {updates},
            user_id = coalesce(excluded.user_id, t.user_id)
        returning t.id::text, {returned}
        """
    ).format(
        target=target,
        names=sql.SQL(", ").join(map(sql.Identifier, names)),
        conflict_i=sql.SQL(", ").join(sql.Identifier("i", c) for c in event.conflict),
        values=sql.SQL(", ").join(sql.Identifier("i", name) for name in names),
        declared=sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type))
            for name, sql_type in columns.items()
        ),
        conflict=conflict,
        updates=sql.SQL(", ").join(updates),
        returned=sql.SQL(", ").join(
            sql.SQL("t.{}::text").format(sql.Identifier(c)) for c in event.conflict
        ),
    )


def _upsert(
    conn: psycopg.Connection, event: EventType, planned: Sequence[Planned]
) -> list[Outcome]:
    # Later rows in the chunk are newer (the read is ordered), so the highest seq wins a key.
    rows = as_jsonb({"seq": seq, **item.values} for seq, item in enumerate(planned))
    returned = conn.execute(upsert_statement(event), {"rows": rows}).fetchall()
    target_ids = {tuple(row[1:]): row[0] for row in returned}
    return [item.outcome(target_id=target_ids[item.key(event)]) for item in planned]


def _reason(exc: psycopg.Error) -> str:
    """The database's one-line reason: the constraint, never the row's values."""
    diag = exc.diag
    reason = diag.message_primary or type(exc).__name__
    if diag.constraint_name and diag.constraint_name not in reason:
        reason += f" (constraint {diag.constraint_name})"
    return f"platform refused the row: {reason}"


def write_direct(
    conn: psycopg.Connection, event: EventType, planned: Sequence[Planned]
) -> list[Outcome]:
    """Upsert the chunk inside the caller's transaction; refused rows come back as failures."""
    if not planned:
        return []
    try:
        with conn.transaction():  # a savepoint: a refusal undoes only this part
            return _upsert(conn, event, planned)
    except ROW_ERRORS as exc:
        if len(planned) == 1:
            return [planned[0].outcome(error=_reason(exc))]
    middle = len(planned) // 2
    return write_direct(conn, event, planned[:middle]) + write_direct(conn, event, planned[middle:])
