"""The live schema of a database as comparable text, read in one round trip.

Two databases at the same migration version should have the same catalog. Anything changed
by hand (a manual ALTER TABLE in prod, an index dropped to fix a lock, a function hot-fixed)
shows as a difference naming the object and both definitions. Objects owned by extensions,
the runner's own tables and views marked `costudy:repeatable` (sql/views, which their assets
re-create) are left out; extensions themselves (name and version) are in. Security is part of
the schema: owners, grants (sorted ACL items), row level security flags, policies and default
privileges are compared like any definition; role names are compared as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from costudy_pipelines.lib.migrations.tracking import DEFAULT, TrackingTable

# kind, name, definition for every user object. Definitions are what PostgreSQL itself
# prints (format_type, pg_get_constraintdef, pg_get_indexdef, ...), so equal means equal.
CATALOG_SQL = """
with schemas as (
    select oid, nspname, nspowner, nspacl from pg_namespace
     where nspname not in ('pg_catalog', 'information_schema')
       and nspname not like 'pg\\_toast%%' and nspname not like 'pg\\_temp\\_%%'
),
rels as (
    select c.oid, c.relkind, s.nspname || '.' || c.relname as name, c.relowner, c.relacl,
           c.relrowsecurity, c.relforcerowsecurity,
           case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
                when 'f' then 'foreign table' when 'S' then 'sequence' else 'table' end as label
      from pg_class c join schemas s on s.oid = c.relnamespace
     where not (s.nspname = %(schema)s and c.relname = any(%(own)s))
       and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                          and d.objid = c.oid and d.deptype = 'e')
       -- repeatable views (sql/views) are re-created by their own assets, not migrations
       and coalesce(obj_description(c.oid, 'pg_class'), '') not like 'costudy:repeatable%%'
),
routines as (
    select p.oid, p.proowner, p.proacl,
           case p.prokind when 'p' then 'procedure' else 'function' end as label,
           s.nspname || '.' || p.proname
           || '(' || pg_get_function_identity_arguments(p.oid) || ')' as name
      from pg_proc p join schemas s on s.oid = p.pronamespace
     where p.prokind in ('f', 'p')
       and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                          and d.objid = p.oid and d.deptype = 'e')
)
select 'schema', nspname::text, ''::text from schemas where nspname <> 'public'
union all
-- security: who owns what, who may do what, row level security and its policies
select 'owner', 'schema ' || nspname, pg_get_userbyid(nspowner)::text from schemas
 where nspname <> 'public'
union all
select 'owner', label || ' ' || name, pg_get_userbyid(relowner) from rels
 where relkind in ('r', 'p', 'v', 'm', 'f', 'S')
union all
select 'grant', 'schema ' || nspname, (select string_agg(a::text, ' ' order by a::text)
                                         from unnest(nspacl) a)
  from schemas where nspacl is not null
union all
select 'grant', label || ' ' || name, (select string_agg(a::text, ' ' order by a::text)
                                         from unnest(relacl) a)
  from rels where relacl is not null
union all
select 'row level security', name,
       case when relforcerowsecurity then 'enabled, forced' else 'enabled' end
  from rels where relrowsecurity
union all
select 'policy', r.name || '.' || p.polname,
       case when p.polpermissive then 'permissive' else 'restrictive' end || ' for '
       || case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                        when 'd' then 'delete' else 'all' end
       || ' to ' || (select string_agg(case when o = 0 then 'public' else pg_get_userbyid(o) end,
                                       ', ' order by 1) from unnest(p.polroles) o)
       || coalesce(' using (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
       || coalesce(' with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '')
  from pg_policy p join rels r on r.oid = p.polrelid
union all
select 'default privileges',
       'for ' || pg_get_userbyid(d.defaclrole) || coalesce(' in schema ' || n.nspname, '')
       || ' on ' || case d.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences'
                        when 'f' then 'functions' when 'T' then 'types' else 'schemas' end,
       (select string_agg(a::text, ' ' order by a::text) from unnest(d.defaclacl) a)
  from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace
union all
select 'extension', extname, extversion from pg_extension where extname <> 'plpgsql'
union all
select label, name,
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
select label, name,
       'returns ' || coalesce(pg_get_function_result(oid), 'void')
       || ', body md5 ' || md5(pg_get_functiondef(oid))
  from routines
union all
select 'owner', label || ' ' || name, pg_get_userbyid(proowner) from routines
union all
select 'grant', label || ' ' || name, (select string_agg(a::text, ' ' order by a::text)
                                         from unnest(proacl) a)
  from routines where proacl is not null
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


def record(conn: psycopg.Connection, table: TrackingTable, version: int) -> None:
    """Keep the catalog as it is now with the version's row (in the caller's transaction)."""
    rows = [[kind, name, definition] for (kind, name), definition in snapshot(conn, table).items()]
    conn.execute(
        table.format("update {table} set catalog = %s where version = %s"), (Jsonb(rows), version)
    )


def recorded(conn: psycopg.Connection, table: TrackingTable) -> dict[int, Catalog]:
    """The catalog kept with each version (versions applied before catalogs were kept: none)."""
    rows = conn.execute(
        table.format("select version, catalog from {table} where catalog is not null")
    ).fetchall()
    return {
        version: {(kind, name): definition for kind, name, definition in catalog}
        for version, catalog in rows
    }
