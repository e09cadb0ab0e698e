"""A warehouse database per test, copied from a template built once from sql/warehouse."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines_tests.harness import DatabaseFactory

WAREHOUSE_SQL = PROJECT_ROOT / "sql" / "warehouse"


def warehouse_migrations() -> list[Path]:
    """The up-migrations in number order (down files excluded)."""
    return sorted(p for p in WAREHOUSE_SQL.glob("[0-9]*.sql") if not p.name.endswith(".down.sql"))


def apply_migrations(url: str) -> None:
    # Stand-in for the migration runner: every up-file, in order, in one transaction.
    with psycopg.connect(url) as conn:
        for path in warehouse_migrations():
            conn.execute(path.read_text())


@pytest.fixture
def warehouse_url(databases: DatabaseFactory) -> str:
    digest = hashlib.sha256()
    for path in warehouse_migrations():
        digest.update(path.name.encode() + path.read_bytes())
    template = databases.template(f"warehouse_tpl_{digest.hexdigest()[:12]}", apply_migrations)
    return databases.create(template=template)
