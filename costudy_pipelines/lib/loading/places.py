"""Rejects of row-hash sources resolved by the row's place at the source.

A row-hash source (Sheets, Elective) has no id: its rows are keyed by their content, so the
fixed version of a rejected row is a new key, and the old reject cannot be found by it. Its
place can: the sheet and row number (Sheets: the worksheet is the feed's scope), the export
file and line (Elective). As rows stream to the session, each place is remembered with the
fingerprint of the content found there; after the session committed, in one transaction:
1. each unresolved reject of this sync is tagged with its place (sync_rejects.record_key);
2. a reject tagged with a place that now holds a live row (its row hash is in the table) is
   resolved by this run: the row was fixed at the source, or its content is valid under a
   fixed mapping.
A row that moved (a row inserted above it) is a new place: its old reject stays open until a
replay loads it or an operator looks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from costudy_pipelines.lib.loading.canonical import (
    UnstorableRecord,
    canonical_json,
    scope_prefix,
    sha256,
)
from costudy_pipelines.lib.loading.spec import LoadSpec

Record = dict[str, Any]

# The same content at several places (a duplicated row, overlapping exports) is one reject:
# it takes the first of its places, so a re-run tags it exactly as before.
TAG_PLACES = """
update sync_rejects r set record_key = p.place
from (
    select fingerprint, min(place) as place
    from unnest(%(places)s::text[], %(fingerprints)s::bytea[]) as u(place, fingerprint)
    group by fingerprint
) as p
where r.source = %(source)s and r.scope = %(scope)s::jsonb and r.resolved_at is null
  and r.fingerprint = p.fingerprint and r.record_key is distinct from p.place
"""

# An open reject whose place now holds a live row: the row at that place loaded (fixed at the
# source, or the same content valid under a fixed mapping).
RESOLVE_BY_PLACE = sql.SQL("""
update sync_rejects r set resolved_at = now(), resolved_by_run = %(run_id)s
from unnest(%(places)s::text[], %(keys)s::bytea[]) as p(place, key)
where r.source = %(source)s and r.scope = %(scope)s::jsonb and r.resolved_at is null
  and r.record_key = p.place
  and exists (select 1 from {table} t where t.{key} = p.key and t.deleted_at is null)
""")


class RowPlaces:
    """Remembers where each row of one sync sits at the source, then resolves by place.

    place: the row's place, read from the row as the reader gives it (None: unknown).
    content: the row as it is loaded (without the reader's position fields).
    """

    def __init__(
        self,
        spec: LoadSpec,
        place: Callable[[Record], str | None],
        content: Callable[[Record], Record],
    ) -> None:
        self.spec = spec
        self.place = place
        self.content = content
        self.prefix = scope_prefix(spec.scope)
        self.places: list[str] = []
        self.fingerprints: list[bytes] = []  # of the content, as its reject has it
        self.keys: list[bytes] = []  # its row hash, as the table has it

    def track(self, rows: Iterable[Record]) -> Iterator[Record]:
        """The rows' content, for the session; each row's place and fingerprint remembered."""
        for row in rows:
            content = self.content(row)
            place = self.place(row)
            if place is not None:
                try:
                    text = canonical_json(content)
                except UnstorableRecord:
                    pass  # the session rejects it under another fingerprint: no place
                else:
                    self.places.append(place)
                    self.fingerprints.append(sha256(text))
                    self.keys.append(sha256(self.prefix + text))
            yield content

    def resolve(self, conn: psycopg.Connection, run_id: str | None) -> int:
        """Tag this sync's rejects with their places and resolve the rejects of places whose
        row now loads; commits; returns how many were resolved."""
        params = {
            "source": self.spec.name,
            "scope": Jsonb(dict(self.spec.scope)),
            "places": self.places,
            "fingerprints": self.fingerprints,
            "keys": self.keys,
            "run_id": run_id,
        }
        resolve = RESOLVE_BY_PLACE.format(
            table=sql.Identifier(self.spec.table), key=sql.Identifier(self.spec.key_column)
        )
        with conn.transaction():
            conn.execute(TAG_PLACES, params)
            resolved = conn.execute(resolve, params).rowcount
        return resolved
