"""Warehouse views kept as SQL files (sql/views/<name>.sql), one view per file.

A file's leading comment block is its description; two directive lines say where it belongs:

    -- Revenue lines: one row per source record that carries revenue.
    -- group: finance
    -- upstream: whop_payments, sheet_*, elective_rows, course_orders, users

`upstream` names the assets (tables or other views) the view reads; a name ending in `*`
stands for every asset whose key starts with what precedes it (one per configured sheet).
The body is `create or replace view <name> ...`, run as-is in one transaction: a view whose
columns change type needs a `drop view if exists <name> cascade;` in its own file first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from costudy_pipelines.lib.settings import PROJECT_ROOT

VIEWS_FOLDER = PROJECT_ROOT / "sql" / "views"
LOCK_TIMEOUT = "30s"  # a view swap waits this long for readers of the old one, then fails

_DIRECTIVE = re.compile(r"^--\s*(group|upstream):\s*(.*?)\s*$")
_CREATES = r"create\s+(or\s+replace\s+)?view\s+{name}\b"


class ViewFileError(ValueError):
    """A view file that cannot be used: says which file and what is wrong."""


class ViewApplyError(RuntimeError):
    """The database refused a view file (a missing table, a syntax error, a lock timeout)."""


@dataclass(frozen=True)
class ViewFile:
    name: str
    path: Path
    sql: str
    description: str
    group: str
    upstream: tuple[str, ...]


def read_view(path: Path) -> ViewFile:
    """Parse one file; the view it creates must carry the file's name."""
    text = path.read_text(encoding="utf-8")
    name = path.stem
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ViewFileError(f"{path}: a view file is named <view name>.sql in lower case")
    if not re.search(_CREATES.format(name=re.escape(name)), text, re.IGNORECASE):
        raise ViewFileError(f"{path}: does not `create or replace view {name}`")
    description, directives = [], {"group": "views", "upstream": ""}
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        match = _DIRECTIVE.match(line)
        if match:
            directives[match.group(1)] = match.group(2)
        else:
            description.append(line.removeprefix("--").strip())
    upstream = tuple(part.strip() for part in directives["upstream"].split(",") if part.strip())
    return ViewFile(name, path, text, " ".join(description), directives["group"], upstream)


def discover_views(folder: Path = VIEWS_FOLDER) -> list[ViewFile]:
    """Every view file of `folder`, by name."""
    if not folder.is_dir():
        raise ViewFileError(f"{folder}: no such folder of view files")
    return [read_view(path) for path in sorted(folder.glob("*.sql"))]


REPEATABLE_MARK = "costudy:repeatable"


def apply_view(conn: psycopg.Connection, view: ViewFile) -> None:
    """Create or replace the view in one transaction; a failure leaves the old view in place."""
    try:
        with conn.transaction():
            conn.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
            conn.execute(view.sql)
            # Marks the view as managed by its asset, not by migrations: the migration
            # runner's drift check leaves marked relations out (lib/migrations/catalog.py).
            conn.execute(
                sql.SQL("comment on view {} is {}").format(
                    sql.Identifier(view.name), sql.Literal(f"{REPEATABLE_MARK} {view.path.name}")
                )
            )
    except psycopg.Error as exc:
        detail = str(exc).strip().splitlines()[0]
        raise ViewApplyError(
            f"view {view.name} ({view.path.name}) was not replaced: {detail}"
            + (" (are the warehouse migrations applied?)" if _is_missing_relation(exc) else "")
        ) from None


def _is_missing_relation(exc: psycopg.Error) -> bool:
    return isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn)
