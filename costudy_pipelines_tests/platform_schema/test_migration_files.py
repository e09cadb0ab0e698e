"""Every down file undoes exactly its up file, and the whole chain can go down and up again."""

from __future__ import annotations

from dataclasses import replace

import psycopg

from costudy_pipelines.lib.migrations import Target, apply, discover, rollback
from costudy_pipelines_tests.platform_schema.support import PLATFORM_SQL, connect

# Everything a migration can leave behind in the public schema, one text line per object.
CATALOG = """
select 'relation ' || c.relkind::text || ' ' || c.relname
from pg_class c where c.relnamespace = 'public'::regnamespace
union all
select 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || case when a.attnotnull then ' not null' else '' end
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
from pg_attribute a
join pg_class c on c.oid = a.attrelid
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where c.relnamespace = 'public'::regnamespace and a.attnum > 0 and not a.attisdropped
union all
select 'constraint ' || conname || ' ' || pg_get_constraintdef(oid)
from pg_constraint where connamespace = 'public'::regnamespace
union all
select 'index ' || pg_get_indexdef(i.indexrelid)
from pg_index i join pg_class c on c.oid = i.indexrelid
where c.relnamespace = 'public'::regnamespace
union all
select 'trigger ' || pg_get_triggerdef(t.oid)
from pg_trigger t join pg_class c on c.oid = t.tgrelid
where c.relnamespace = 'public'::regnamespace and not t.tgisinternal
union all
select 'function ' || p.oid::regprocedure::text || ' ' || md5(pg_get_functiondef(p.oid))
from pg_proc p where p.pronamespace = 'public'::regnamespace
union all
select 'type ' || t.typname || ' ' || t.typtype::text
from pg_type t where t.typnamespace = 'public'::regnamespace
union all
select 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
from pg_class c where c.relkind = 'v' and c.relnamespace = 'public'::regnamespace
"""


def catalog(conn: psycopg.Connection) -> set[str]:
    """The public schema's objects, less the runner's own tracking tables."""
    return {line for (line,) in conn.execute(CATALOG) if "schema_migration" not in line}


def test_every_up_file_has_a_down_file() -> None:
    migrations = discover(PLATFORM_SQL, database="platform")
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert [m.name for m in migrations if m.down_sql is None] == []


def test_each_down_file_undoes_its_up_file_and_the_chain_reapplies(fresh_db_url: str) -> None:
    """Through the real runner: apply file by file, then roll back one version at a time."""
    migrations = discover(PLATFORM_SQL, database="platform")
    target = Target("platform", "test", fresh_db_url)
    with connect(fresh_db_url) as conn:
        states = [catalog(conn)]
        assert states[0] == set(), "a new database should have an empty public schema"
        for count, migration in enumerate(migrations, start=1):
            apply(target, replace(migrations, migrations=migrations.migrations[:count]))
            states.append(catalog(conn))
            assert states[-1] != states[-2], f"{migration.name} created nothing"

        for index in range(len(migrations), 0, -1):
            migration = migrations.migrations[index - 1]
            rollback(target, migrations, migration.version)
            now = catalog(conn)
            assert now == states[index - 1], (
                f"{migration.down_name} left {sorted(now - states[index - 1])} "
                f"and removed {sorted(states[index - 1] - now)}"
            )

        apply(target, migrations)
        assert catalog(conn) == states[-1]
