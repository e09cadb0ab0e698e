"""A production backup restores with its owners and grants: into an equivalent cluster the
catalog (security included) is exactly what was dumped, so the owner-drift check stays clean;
a role the target lacks is mapped, and the report says so."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from costudy_pipelines.lib.migrations import apply, discover
from costudy_pipelines.lib.migrations.backup import backup, map_roles, referenced_roles
from costudy_pipelines.lib.migrations.backup import restore_into_empty as restore
from costudy_pipelines.lib.migrations.catalog import compare_catalogs
from costudy_pipelines_tests.harness import DatabaseFactory
from costudy_pipelines_tests.lib.migrations.support import (
    execute,
    query,
    snapshot,
    target,
    write_files,
)


@pytest.fixture
def roles(databases: DatabaseFactory, pg_server_url: str) -> Iterator[dict[str, str]]:
    """Two roles of this test's own (roles are cluster-wide), dropped after its databases."""
    prefix = f"costudy_t_{uuid.uuid4().hex[:8]}"
    names = {"owner": f"{prefix}_owner", "reader": f"{prefix}_reader"}
    for name in names.values():
        query(pg_server_url, sql.SQL("create role {}").format(sql.Identifier(name)).as_string())
    yield names
    databases.drop_all()
    for name in names.values():
        query(
            pg_server_url,
            sql.SQL("drop role if exists {}").format(sql.Identifier(name)).as_string(),
        )


def _secured_folder(folder: Path, roles: dict[str, str]) -> Path:
    owner, reader = roles["owner"], roles["reader"]
    return write_files(
        folder,
        {
            "001-notes.sql": f"""
                create schema notes authorization {owner};
                create table notes.notes (id bigint primary key, author text, body text);
                alter table notes.notes owner to {owner};
                insert into notes.notes values (1, 'ann', 'kept; with ''quotes''
                OWNER TO {owner};');
                grant usage on schema notes to {reader};
                grant select on notes.notes to {reader};
                alter table notes.notes enable row level security;
                create policy own_rows on notes.notes for select to {reader}
                    using (author = current_user);
                alter default privileges for role {owner} in schema notes
                    grant select on tables to {reader};
            """,
        },
    )


def _dump(url: str, tmp_path: Path) -> Path:
    server_major = int(query(url, "show server_version_num")[0][0]) // 10000
    return backup(target(url, "prod"), tmp_path / "backups", server_major=server_major, version=1)


def test_restore_into_an_equivalent_cluster_keeps_owners_grants_and_policies(
    databases: DatabaseFactory, roles: dict[str, str], folder: Path, tmp_path: Path
):
    prod = databases.create()
    apply(target(prod, "prod"), discover(_secured_folder(folder, roles)))
    dumped = _dump(prod, tmp_path)
    restored = databases.create()

    report = restore(dumped, target(restored, "prod"))

    assert report.mapped == {}
    assert set(report.roles) >= {roles["owner"], roles["reader"]}
    assert query(restored, "select tableowner from pg_tables where tablename = 'notes'") == [
        (roles["owner"],)
    ]
    assert query(
        restored, "select has_table_privilege(%s, 'notes.notes', 'select')", (roles["reader"],)
    ) == [(True,)]
    # The owner-drift check compares exactly these catalogs: nothing differs.
    assert compare_catalogs(snapshot(prod), snapshot(restored)) == []
    # A row whose text looks like an ownership statement is data, restored as it was.
    body = query(restored, "select body from notes.notes")
    assert body == query(prod, "select body from notes.notes")
    assert body[0][0].endswith(f"OWNER TO {roles['owner']};")


def test_roles_the_target_lacks_are_mapped_and_reported(
    databases: DatabaseFactory,
    roles: dict[str, str],
    folder: Path,
    tmp_path: Path,
    pg_server_url: str,
):
    gone = f"{roles['owner']}_gone"
    execute(pg_server_url, f"create role {gone}")
    source = databases.create()
    execute(source, f"create table t (id int); alter table t owner to {gone}")
    dumped = _dump(source, tmp_path)
    execute(pg_server_url, f'drop database "{source.rsplit("/", 1)[1]}"')
    databases.created.remove(source.rsplit("/", 1)[1])
    execute(pg_server_url, f"drop role {gone}")
    by_default, mapped = databases.create(), databases.create()

    default_report = restore(dumped, target(by_default))
    mapped_report = restore(dumped, target(mapped), {gone: roles["reader"]})

    [(current,)] = query(by_default, "select current_user")
    assert default_report.mapped == {gone: current}
    assert default_report.describe() == [
        f"role {gone} does not exist on the target: its objects and grants went to {current}"
    ]
    assert query(by_default, "select tableowner from pg_tables where tablename = 't'") == [
        (current,)
    ]
    assert mapped_report.mapped == {gone: roles["reader"]}
    assert query(mapped, "select tableowner from pg_tables where tablename = 't'") == [
        (roles["reader"],)
    ]


def test_role_names_in_data_are_not_roles():
    script = (
        "ALTER TABLE public.t OWNER TO app;\n"
        "COPY public.t (body) FROM stdin;\n"
        "ALTER TABLE x OWNER TO app;\n"
        "\\.\n"
        'GRANT SELECT ON TABLE public.t TO "Readers";\n'
    )

    assert referenced_roles(script) == {"app", "Readers"}
    assert map_roles(script, {"app": "postgres", "Readers": "r2"}) == (
        'ALTER TABLE public.t OWNER TO "postgres";\n'
        "COPY public.t (body) FROM stdin;\n"
        "ALTER TABLE x OWNER TO app;\n"
        "\\.\n"
        'GRANT SELECT ON TABLE public.t TO "r2";\n'
    )
