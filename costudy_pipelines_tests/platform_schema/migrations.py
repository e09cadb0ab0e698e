"""The platform migration files, applied as the runner applies them: one file, one transaction.

Stand-in until the migration runner lands: then the fixtures call its `apply_pending`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import psycopg

from costudy_pipelines.lib.settings import PROJECT_ROOT

PLATFORM_SQL = PROJECT_ROOT / "sql" / "platform"
UP_FILE = re.compile(r"^(\d+)-[a-z0-9-]+\.sql$")


def up_files(folder: Path = PLATFORM_SQL) -> list[Path]:
    """The up files in numeric order (`10-` after `9-`)."""
    numbered = [(UP_FILE.match(path.name), path) for path in folder.glob("*.sql")]
    return sorted(
        (path for match, path in numbered if match and not path.name.endswith(".down.sql")),
        key=lambda path: int(path.name.split("-", 1)[0]),
    )


def down_file(up: Path) -> Path:
    return up.with_name(up.name.removesuffix(".sql") + ".down.sql")


def apply_file(conn: psycopg.Connection, path: Path) -> None:
    """The whole file in one execute and one transaction: DO blocks and $$ bodies stay intact."""
    with conn.transaction():
        conn.execute(path.read_text())


def content_digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
