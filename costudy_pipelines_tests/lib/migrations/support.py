"""Helpers for the migration tests: small folders written per test, targets, quick queries."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from costudy_pipelines.cli import main
from costudy_pipelines.lib import pg
from costudy_pipelines.lib.migrations import Target, catalog
from costudy_pipelines.lib.settings import PROJECT_ROOT

FIXTURES = Path(__file__).parent / "fixtures"


def write_files(folder: Path, files: dict[str, str]) -> Path:
    """Write migration files (dedented) into `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)  # `NN_name/up.sql` too
        (folder / name).write_text(textwrap.dedent(text).lstrip("\n"))
    return folder


def target(url: str, environment: str = "dev", *, production: bool = False) -> Target:
    return Target("app", environment, url, "TEST_DB_URL", production)


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(pg.libpq_dsn(url, source="test"), autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def execute(url: str, sql: str) -> None:
    query(url, sql)


def applied_versions(url: str) -> list[int]:
    return [row[0] for row in query(url, "select version from schema_migrations order by 1")]


def history(url: str) -> list[tuple]:
    return query(url, "select action, version from schema_migrations_history order by id")


def table_exists(url: str, name: str) -> bool:
    return query(url, "select to_regclass(%s) is not null", (name,))[0][0]


def snapshot(url: str) -> catalog.Catalog:
    with psycopg.connect(pg.libpq_dsn(url, source="test"), autocommit=True) as conn:
        return catalog.snapshot(conn)


ACCOUNTS = {
    "001-accounts.sql": """
        create table accounts (
            id bigint generated always as identity primary key,
            email text not null unique,
            created_at timestamptz not null default now()
        );
        create index accounts_created_idx on accounts (created_at);
    """,
    "001-accounts.down.sql": "drop table accounts;\n",
    "002-orders.sql": """
        create table orders (
            id bigint generated always as identity primary key,
            account_id bigint not null references accounts (id),
            amount numeric(12, 2) not null check (amount >= 0)
        );
    """,
    "002-orders.down.sql": "drop table orders;\n",
    "003-order-total.sql": """
        -- A body full of semicolons: the server parses it, the runner does not split it.
        create function account_total(p_account bigint) returns numeric
        language plpgsql stable as $$
        declare
            total numeric;  -- ; in a comment
        begin
            select coalesce(sum(amount), 0) into total from orders where account_id = p_account;
            raise notice 'total for %: %; done', p_account, total;
            return total;
        end;
        $$;
        do $$ begin
            if not exists (select 1 from pg_class where relname = 'orders_account_idx') then
                create index orders_account_idx on orders (account_id);
            end if;
        end $$;
    """,
    "003-order-total.down.sql": """
        drop index orders_account_idx;
        drop function account_total(bigint);
    """,
}


def write_config(tmp_path: Path, folder: Path) -> Path:
    """An environments file: one database (`folder`), dev and prod read the platform variables."""
    path = tmp_path / "environments.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            backup_dir = "backups"
            lock_timeout_seconds = 5

            [databases.app]
            folder = "{folder.relative_to(tmp_path)}"
            environments = [
                {{ name = "dev", url_env = "PLATFORM_DB_URL" }},
                {{ name = "prod", url_env = "PLATFORM_PROD_DB_URL", production = true }},
            ]
            """
        )
    )
    return path


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.dev = env["PLATFORM_DB_URL"]
        self.prod = env["PLATFORM_PROD_DB_URL"]

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["migrate", *args], env=self.env)


def reference_migrations(*parts: str) -> Path:
    """A folder of ../shared/reference/migrations beside the checkout (as CI lays it out), or
    under $COSTUDY_REFERENCE_DIR; skips the test when it is absent (a user's clone)."""
    named = os.environ.get("COSTUDY_REFERENCE_DIR")
    candidates = [Path(named)] if named else []
    candidates += [parent / "shared" / "reference" for parent in PROJECT_ROOT.parents[:3]]
    for candidate in candidates:
        folder = candidate.joinpath("migrations", *parts)
        if folder.is_dir():
            return folder
    looked = ", ".join(str(candidate) for candidate in candidates)
    pytest.skip(f"no shared/reference/migrations/{'/'.join(parts)} (looked in {looked})")
