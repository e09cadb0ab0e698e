"""The live schema of a database as comparable text, read in one round trip.

Two databases at the same migration version should have the same catalog. Anything changed
by hand (a manual ALTER TABLE in prod, an index dropped to fix a lock, a function hot-fixed)
shows as a difference naming the object and both definitions. Objects owned by extensions,
the runner's own tables and views marked `costudy:repeatable` (sql/views, which their assets
re-create) are left out; extensions themselves (name and version) are in.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from costudy_pipelines.lib.migrations.tracking import DEFAULT, TrackingTable

# kind, name, definition for every user object. Definitions are what PostgreSQL itself
# prints (format_type, pg_get_constraintdef, pg_get_indexdef, ...), so equal means equal.
CATALOG_SQL = """
with schemas as (
    select oid, nspname from pg_namespace
     where nspname not in ('pg_catalog', 'information_schema')
       and nspname not like 'pg\\_toast%%' and nspname not like 'pg\\_temp\\_%%'
),
rels as (
    select c.oid, c.relkind, s.nspname || '.' || c.relname as name
      from pg_class c join schemas s on s.oid = c.relnamespace
     where not (s.nspname = %(schema)s and c.relname = any(%(own)s))
       and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                          and d.objid = c.oid and d.deptype = 'e')
       -- repeatable views (sql/views) are re-created by their own assets, not migrations
       and coalesce(obj_description(c.oid, 'pg_class'), '') not like 'costudy:repeatable%%'
)
select 'schema', nspname, '' from schemas where nspname <> 'public'
union all
select 'extension', extname, extversion from pg_extension where extname <> 'plpgsql'
union all
select case relkind when 'v' then 'view' when 'm' then 'materialized view'
                    when 'f' then 'foreign table' else 'table' end,
       name,
       case when relkind in ('v', 'm') then pg_get_viewdef(oid, true)
            when relkind = 'p' then 'partitioned' else '' end
  from rels where relkind in ('r', 'p', 'v', 'm', 'f')
union all
select 'column', r.name || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod)
       || case when a.attnotnull then ' not null' else '' end
       || case when a.attidentity <> '' then ' identity' else '' end
       || case when a.attgenerated <> '' then ' generated' else '' end
       || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
  from pg_attribute a join rels r on r.oid = a.attrelid
  left join pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
 where r.relkind in ('r', 'p', 'v', 'm', 'f') and a.attnum > 0 and not a.attisdropped
union all
select 'constraint', r.name || '.' || con.conname, pg_get_constraintdef(con.oid)
  from pg_constraint con join rels r on r.oid = con.conrelid
union all
select 'index', r.name,
       pg_get_indexdef(r.oid) || case when i.indisvalid then '' else ' (INVALID)' end
  from rels r join pg_index i on i.indexrelid = r.oid
union all
select 'sequence', r.name, format_type(sq.seqtypid, null) || ' increment ' || sq.seqincrement
  from rels r join pg_sequence sq on sq.seqrelid = r.oid
union all
select 'trigger', r.name || '.' || t.tgname, pg_get_triggerdef(t.oid)
  from pg_trigger t join rels r on r.oid = t.tgrelid where not t.tgisinternal
union all
select case p.prokind when 'p' then 'procedure' else 'function' end,
       s.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       'returns ' || coalesce(pg_get_function_result(p.oid), 'void')
       || ', body md5 ' || md5(pg_get_functiondef(p.oid))
  from pg_proc p join schemas s on s.oid = p.pronamespace
 where p.prokind in ('f', 'p')
   and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                      and d.objid = p.oid and d.deptype = 'e')
union all
select 'type', s.nspname || '.' || t.typname,
       'enum (' || string_agg(e.enumlabel, ', ' order by e.enumsortorder) || ')'
  from pg_type t join schemas s on s.oid = t.typnamespace join pg_enum e on e.enumtypid = t.oid
 group by s.nspname, t.typname
"""


@dataclass(frozen=True)
class CatalogDifference:
    kind: str
    name: str
    left: str | None  # None: the object does not exist on that side
    right: str | None

    def describe(self, left_label: str, right_label: str) -> str:
        if self.left is None:
            return f"exists only in {right_label}: {self.right}"
        if self.right is None:
            return f"exists only in {left_label}: {self.left}"
        return f"differs: {left_label} {self.left!r}, {right_label} {self.right!r}"


Catalog = dict[tuple[str, str], str]


def snapshot(conn: psycopg.Connection, table: TrackingTable = DEFAULT) -> Catalog:
    """Every user object of the database as {(kind, name): definition}."""
    rows = conn.execute(
        CATALOG_SQL, {"schema": table.schema, "own": sorted(table.relations)}
    ).fetchall()
    return {(kind, name): definition for kind, name, definition in rows}


def compare_catalogs(left: Catalog, right: Catalog) -> list[CatalogDifference]:
    """Objects missing on one side or defined differently, sorted by kind and name."""
    return [
        CatalogDifference(kind, name, left.get((kind, name)), right.get((kind, name)))
        for kind, name in sorted(left.keys() | right.keys())
        if left.get((kind, name)) != right.get((kind, name))
    ]
