"""People of an application database against the warehouse's copy of them, compared in SQL.

The application's people (id, normalised email, md5 of the name) are streamed into a
temporary table of the warehouse (crossdb.stage_query), then four anti-joins and joins find:
people the warehouse lacks, warehouse rows the application no longer has, and people whose
email or name differ. Only counts and SAMPLE_SIZE ids leave the database, and names travel as
hashes, so a million people cost one sequential read per side and no memory in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from costudy_pipelines.lib.crossdb import Found, count_and_sample, stage_query

STAGED = "application_people"


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
    return sql.SQL(
        "select {id}::text, lower(normalize(btrim({email}), NFC)), md5(coalesce({name}, ''))"
        " from {table}"
    ).format(
        id=sql.Identifier(source.id_column),
        email=sql.Identifier(source.email_column),
        name=sql.Identifier(source.name_column),
        table=sql.Identifier(source.table),
    )


def compare_people(
    application: psycopg.Connection, warehouse: psycopg.Connection, source: PeopleSource
) -> PeopleDiscrepancies:
    """Both connections in autocommit mode; the warehouse side runs in one transaction."""
    names = {
        "staged": sql.Identifier(STAGED),
        "copy": sql.Identifier(source.warehouse_table),
        "copy_name": sql.SQL(source.warehouse_name),
    }
    live_copy = sql.SQL("select * from {copy} where deleted_at is null").format(**names)
    with warehouse.transaction():
        columns = {"id": "text", "email": "text", "name_md5": "text"}
        compared = stage_query(
            application, _application_people(source), None, warehouse, STAGED, columns
        )

        def found(query: str) -> Found:
            return count_and_sample(warehouse, sql.SQL(query).format(live=live_copy, **names))

        return PeopleDiscrepancies(
            compared,
            missing_in_warehouse=found(
                "select p.id as key from {staged} p where not exists"
                " (select 1 from ({live}) w where w.external_id = p.id)"
            ),
            missing_in_application=found(
                "select w.external_id as key from ({live}) w where not exists"
                " (select 1 from {staged} p where p.id = w.external_id)"
            ),
            emails_differ=found(
                "select p.id as key from {staged} p join ({live}) w on w.external_id = p.id"
                " where p.email is distinct from w.email"
            ),
            names_differ=found(
                "select p.id as key from {staged} p join ({live}) w on w.external_id = p.id"
                " where p.name_md5 <> md5(coalesce({copy_name}, ''))"
            ),
        )
