"""Other projects' real migration folders (../shared/reference/migrations), applied exactly as
their repositories hold them: configuration only, no file renamed or edited.

Each folder goes to dev, then to production (backup, destructive statements approved in the
configuration, promotion checks), a second apply applies nothing, and status is clean (no
problem, no drift between dev and production). Skipped where the reference folder is absent.

- Lemmy (Diesel layout) on the machine's server: its files from August 2025 on use PostgreSQL 16
  syntax (a subquery in FROM without an alias), so on an older server `--target` stops before
  the first of them, and the test says how many it left.
- Umami (Prisma layout).
- Supabase's postgres image (dbmate layout) demotes the `postgres` role (`ALTER ROLE postgres
  NOSUPERUSER`): it runs in a private throwaway cluster whose bootstrap superuser is
  `supabase_admin`, as in Supabase's image, never on the shared test server. Its roles and
  schemas come from the image's init scripts (not in the folder): SUPABASE_INIT creates them.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from costudy_pipelines.lib import embedded_pg, pg
from costudy_pipelines.lib.embedded_pg import EmbeddedPostgres, binary
from costudy_pipelines.lib.migrations import MigrationSet, analyse, discover, load_config
from costudy_pipelines.lib.migrations.promotion import database_status, promote
from costudy_pipelines.lib.migrations.runner import ApplyReport, RunOptions
from costudy_pipelines_tests.harness import DatabaseFactory, server_folder
from costudy_pipelines_tests.lib.migrations.support import query, reference_migrations

LEMMY_FIRST_PG16 = "2025-08-01-000016_smoosh-tables-together"
# Extensions the folders create: PostgreSQL's contrib modules, which a server may lack (the
# embedded pgserver build ships none of them).
LEMMY_EXTENSIONS = ("pgcrypto", "ltree", "pg_trgm")
UMAMI_EXTENSIONS = ("pgcrypto",)


def require_extensions(url: str, names: tuple[str, ...]) -> None:
    """Skip, naming them, when the server cannot create the extensions the folder needs."""
    available = {row[0] for row in query(url, "select name from pg_available_extensions")}
    missing = [name for name in names if name not in available]
    if missing:
        pytest.skip(f"the server lacks the contrib extension(s) {missing} the folder creates")


def _destructive(migrations: MigrationSet) -> list[str]:
    """The files whose destructive statements production must approve."""
    return [
        migration.name
        for migration in migrations
        if analyse(migration.sql, no_transaction=migration.no_transaction).destructive
    ]


def write_reference_config(
    tmp_path: Path, folder: Path, project: str, approve: list[str], extra: str = ""
) -> Path:
    """dev then prod; production approves `approve` (reviewed upstream) by configuration."""
    approvals = "".join(
        f"    {{ file = {json.dumps(name)}, reason = "
        f"{json.dumps(f'reviewed and applied upstream in {project}')} }},\n"
        for name in approve
    )
    path = tmp_path / "environments.toml"
    path.write_text(
        f"""backup_dir = "backups"
lock_timeout_seconds = 30

[databases.ref]
folder = {json.dumps(str(folder))}
{extra}
[[databases.ref.environments]]
name = "dev"
url_env = "REF_DEV_URL"

[[databases.ref.environments]]
name = "prod"
url_env = "REF_PROD_URL"
production = true
allow_destructive = [
{approvals}]
"""
    )
    return path


def apply_everywhere(
    config_path: Path, target_version: str | None = None
) -> tuple[list[ApplyReport], list[ApplyReport], list[str]]:
    """Apply dev then prod, apply again, and read status: (first, second, problems)."""
    config = load_config(config_path)
    database = config.database("ref")
    options = RunOptions(lock_timeout_s=30, target_version=target_version)
    first = list(promote(config, database, (), options))
    second = list(promote(config, database, (), options))
    return first, second, database_status(database).problems


def _approved_in_history(url: str) -> list[str]:
    rows = query(
        url,
        "select name from schema_migrations_history where action = 'apply' and detail like %s",
        ("%approved by configuration%",),
    )
    return [row[0] for row in rows]


def test_lemmy_diesel_folder_applies_on_dev_then_production(
    databases: DatabaseFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = reference_migrations("lemmy", "migrations")
    dev, prod = databases.create(), databases.create()
    monkeypatch.setenv("REF_DEV_URL", dev)
    monkeypatch.setenv("REF_PROD_URL", prod)
    require_extensions(dev, LEMMY_EXTENSIONS)
    migrations = discover(folder)
    assert migrations.layout == "diesel" and len(migrations) > 300
    server = query(dev, "select current_setting('server_version_num')::int")[0][0]
    names = [migration.name.split("/")[0] for migration in migrations]
    if server >= 160000:
        target, expected = None, len(migrations)
    else:
        stop = names.index(LEMMY_FIRST_PG16)
        target, expected = names[stop - 1], stop
    approve = _destructive(migrations)
    config = write_reference_config(tmp_path, folder, "LemmyNet/lemmy", approve)

    first, second, problems = apply_everywhere(config, target)

    assert [len(report.applied) for report in first] == [expected, expected]
    assert [len(report.applied) for report in second] == [0, 0]
    assert problems == []
    assert first[1].backup is not None
    applied = {name.split("/")[0] for name in _approved_in_history(prod)}
    assert applied == {
        name.split("/")[0] for name in approve if names.index(name.split("/")[0]) < expected
    }
    assert query(prod, "select to_regclass('public.comment') is not null")[0][0]


def test_umami_prisma_folder_applies_on_dev_then_production(
    databases: DatabaseFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = reference_migrations("umami", "prisma", "migrations")
    dev, prod = databases.create(), databases.create()
    monkeypatch.setenv("REF_DEV_URL", dev)
    monkeypatch.setenv("REF_PROD_URL", prod)
    require_extensions(dev, UMAMI_EXTENSIONS)
    migrations = discover(folder)
    assert migrations.layout == "prisma"
    config = write_reference_config(
        tmp_path, folder, "umami-software/umami", _destructive(migrations)
    )

    first, second, problems = apply_everywhere(config)

    assert [len(report.applied) for report in first] == [len(migrations)] * 2
    assert [len(report.applied) for report in second] == [0, 0]
    assert problems == []
    assert query(prod, "select count(*) from schema_migrations")[0][0] == len(migrations)


# What Supabase's image init scripts create before its migrations run (roles, schemas).
SUPABASE_ROLES = (
    "anon",
    "authenticated",
    "service_role",
    "authenticator",
    "supabase_auth_admin",
    "supabase_storage_admin",
    "supabase_functions_admin",
    "dashboard_user",
    "pgbouncer",
    "supabase_replication_admin",
    "supabase_read_only_user",
    "supabase_realtime_admin",
    "pgsodium_keyholder",
    "pgsodium_keymaker",
    "pgsodium_keyiduser",
)
SUPABASE_INIT = """
create schema if not exists auth authorization supabase_auth_admin;
create schema if not exists storage authorization supabase_storage_admin;
create schema if not exists extensions;
grant usage on schema auth, storage, extensions to postgres;
"""


class _SupabaseCluster(EmbeddedPostgres):
    """A throwaway cluster bootstrapped by `supabase_admin` (so `postgres` can be demoted)."""

    bootstrap = "supabase_admin"

    def _initdb(self, password_file: Path | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        embedded_pg._prepare_root_permissions(self.data_dir)
        self._run(
            [
                str(binary("initdb")),
                "-D",
                str(self.data_dir),
                "-U",
                self.bootstrap,
                "--encoding=UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=trust",
            ],
            what=f"initialise {self.data_dir}",
        )

    def server_url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.bootstrap}@127.0.0.1:{self.port}/{database}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def supabase_cluster() -> Iterator[str]:
    reference_migrations("supabase-postgres", "migrations", "db", "migrations")
    with server_folder("costudy-supabase-") as folder:
        yield from _supabase(_SupabaseCluster(folder / "data", _free_port()))


def _supabase(cluster: _SupabaseCluster) -> Iterator[str]:
    cluster.start()
    try:
        url = cluster.server_url()
        with psycopg.connect(pg.libpq_dsn(url, source="test"), autocommit=True) as conn:
            conn.execute("create role postgres superuser login")
            for role in SUPABASE_ROLES:
                conn.execute(
                    psycopg.sql.SQL("create role {} nologin").format(psycopg.sql.Identifier(role))
                )
            conn.execute("alter role authenticator login")
            conn.execute("grant anon, authenticated, service_role to authenticator")
        yield url
    finally:
        cluster.stop()


def test_supabase_dbmate_folder_applies_on_dev_then_production(
    supabase_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = reference_migrations("supabase-postgres", "migrations", "db", "migrations")
    factory = DatabaseFactory(supabase_cluster)
    dev, prod = factory.create(), factory.create()
    for url in (dev, prod):
        query(url, SUPABASE_INIT)
    monkeypatch.setenv("REF_DEV_URL", dev)
    monkeypatch.setenv("REF_PROD_URL", prod)
    migrations = discover(folder)
    assert migrations.layout == "dbmate"
    config = write_reference_config(tmp_path, folder, "supabase/postgres", _destructive(migrations))

    first, second, problems = apply_everywhere(config)

    assert [len(report.applied) for report in first] == [len(migrations)] * 2
    assert [len(report.applied) for report in second] == [0, 0]
    assert problems == []
    assert query(prod, "select rolsuper from pg_roles where rolname = 'postgres'") == [(False,)]
    factory.drop_all()
