"""Website events not reflected in the platform (SPEC §4 monitoring, issue 6's discrepancy check).

The two databases are separate, so the comparison streams only (source id, fingerprint) from
the website, in chunks, and joins each chunk against the tracking table (and, for events
written directly, the target table) in the platform: one round trip per chunk, nothing held
beyond a chunk and the sample.

An event is a discrepancy when the platform has not got it (missing), has an older version
(stale), has not confirmed it (pending, failed) or has lost the row it wrote (target_missing).
Dead letters are accounted for with their reason, so they are counted apart, not as
discrepancies.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from costudy_pipelines.lib.reverse_sync import website
from costudy_pipelines.lib.reverse_sync.events import EventType

SAMPLE_SIZE = 20

COMPARE = """
select source_id, kind from (
select s.source_id,
       case
           when k.source_id is null then 'missing'
           when k.status = 'dead' and k.fingerprint = s.fingerprint then 'dead'
           when k.fingerprint <> s.fingerprint then 'stale'
           when k.status <> 'synced' then k.status
           when k.strategy = 'direct' and x.id is null then 'target_missing'
       end as kind
from unnest(%(ids)s::text[], %(fingerprints)s::text[]) as s(source_id, fingerprint)
left join reverse_sync_tracking as k
       on k.event_type = %(event)s and k.source_id = s.source_id
left join {target} as x
       on x.id = case when k.strategy = 'direct' then k.target_id::uuid end
) as compared
where kind is not null
"""


@dataclass
class DiscrepancyReport:
    event_type: str
    checked: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    samples: list[str] = field(default_factory=list)  # "source id: kind", up to SAMPLE_SIZE

    @property
    def count(self) -> int:
        return sum(self.by_kind.values())


def find_discrepancies(
    event: EventType,
    website_conn: psycopg.Connection,
    platform_conn: psycopg.Connection,
    *,
    chunk_size: int = 20_000,
) -> DiscrepancyReport:
    report = DiscrepancyReport(event.name)
    compare = sql.SQL(COMPARE).format(target=sql.Identifier(event.target))
    for chunk in website.read_fingerprints(website_conn, event, chunk_size):
        report.checked += len(chunk)
        rows = platform_conn.execute(
            compare,
            {
                "event": event.name,
                "ids": [source_id for source_id, _ in chunk],
                "fingerprints": [fingerprint for _, fingerprint in chunk],
            },
        ).fetchall()
        for source_id, kind in rows:
            if kind == "dead":
                report.dead_letters += 1
                continue
            report.by_kind[kind] += 1
            if len(report.samples) < SAMPLE_SIZE:
                report.samples.append(f"{source_id}: {kind}")
    return report
