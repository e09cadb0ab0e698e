"""People of an application database against the warehouse's copy of them, compared in SQL.

The application's people (id, email, name as stored) are streamed into a temporary table of
the warehouse (crossdb.stage_query); one hash full join with the warehouse's live rows then
classifies every mismatch: people the warehouse lacks, warehouse rows the application no
longer has, emails or names that differ. Only counts and SAMPLE_SIZE ids per kind leave the
database, so a million people cost one sequential read per side and no memory in Python.

The application side is read as stored, without computing anything per row (on a million
rows, md5() and normalize() there cost several seconds of the application database's time):
emails are compared as text first and normalised (trim, NFC, lower case, as the warehouse
stores them) only where the text differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from costudy_pipelines.lib.crossdb import SAMPLE_SIZE, Found, comparison, stage_query

STAGED = "application_people"
FINDINGS = "people_findings"
KINDS = ("missing_in_warehouse", "missing_in_application", "emails_differ", "names_differ")


@dataclass(frozen=True)
class PeopleSource:
    """Where an application keeps its people, and the warehouse table that copies them.

    `warehouse_name` is the expression over the warehouse row (alias `w`) that holds the name
    as the application stored it (the raw record), not the unified users.name, which other
    sources may win by priority.
    """

    table: str
    warehouse_table: str
    id_column: str = "id"
    email_column: str = "email"
    name_column: str = "name"
    warehouse_name: str = "w.raw->>'name'"


PLATFORM_PEOPLE = PeopleSource(table="users", warehouse_table="platform_users")


@dataclass(frozen=True)
class PeopleDiscrepancies:
    compared: int  # people in the application database
    missing_in_warehouse: Found
    missing_in_application: Found
    emails_differ: Found
    names_differ: Found


def _application_people(source: PeopleSource) -> sql.Composed:
    return sql.SQL("select {id}::text, {email}, {name} from {table}").format(
        id=sql.Identifier(source.id_column),
        email=sql.Identifier(source.email_column),
        name=sql.Identifier(source.name_column),
        table=sql.Identifier(source.table),
    )


# Every (kind, application id) that disagrees, from one hash full join: the cheap text
# comparisons pick the disagreeing pairs, which alone are then classified.
FINDINGS_SQL = """
create temporary table {findings} on commit drop as
select f.kind, coalesce(d.id, d.external_id) as key
from (
    select p.id, p.email, w.external_id, w.email as copy_email,
           p.name is distinct from {copy_name} as names_differ
    from {staged} p
    full join (select * from {copy} where deleted_at is null) w on w.external_id = p.id
    where p.id is null or w.external_id is null
       or p.email is distinct from w.email or p.name is distinct from {copy_name}
) d
cross join lateral (values
    ('missing_in_warehouse', d.external_id is null),
    ('missing_in_application', d.id is null),
    ('emails_differ', d.id is not null and d.external_id is not null
        and d.email is distinct from d.copy_email
        and lower(normalize(btrim(d.email), NFC)) is distinct from d.copy_email),
    ('names_differ', d.id is not null and d.external_id is not null and d.names_differ)
) as f(kind, found)
where f.found
"""
# Per kind: the total and the SAMPLE_SIZE smallest ids.
SAMPLES_SQL = """
select kind, key, total from (
    select kind, key, count(*) over (partition by kind) as total,
           row_number() over (partition by kind order by key) as rank
    from {findings}
) ranked
where rank <= {sample_size}
order by kind, key
"""


def compare_people(
    application: psycopg.Connection, warehouse: psycopg.Connection, source: PeopleSource
) -> PeopleDiscrepancies:
    """Both connections in autocommit mode; the warehouse side runs in one transaction."""
    names = {
        "staged": sql.Identifier(STAGED),
        "findings": sql.Identifier(FINDINGS),
        "copy": sql.Identifier(source.warehouse_table),
        "copy_name": sql.SQL(source.warehouse_name),
        "sample_size": sql.Literal(SAMPLE_SIZE),
    }
    columns = {"id": "text", "email": "text", "name": "text"}
    with comparison(warehouse):
        compared = stage_query(
            application, _application_people(source), None, warehouse, STAGED, columns
        )
        warehouse.execute(sql.SQL(FINDINGS_SQL).format(**names))
        rows = warehouse.execute(sql.SQL(SAMPLES_SQL).format(**names)).fetchall()
    totals = {kind: 0 for kind in KINDS}
    samples: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for kind, key, total in rows:
        totals[kind] = int(total)
        samples[kind].append(key)
    return PeopleDiscrepancies(
        compared, **{kind: Found(totals[kind], samples[kind]) for kind in KINDS}
    )
