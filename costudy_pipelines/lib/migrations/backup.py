"""A pg_dump of a production database before migrations touch it, and its restore.

pg_dump must be at least as new as the server it dumps, and pg_restore as new as the pg_dump
that wrote the file. Candidates, in order: the binaries shipped in the pgserver wheel
(PostgreSQL 16, which handles 16 and older), then the system's.
The password travels in PGPASSWORD, never on the command line (visible in `ps`).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from costudy_pipelines.lib import embedded_pg
from costudy_pipelines.lib.migrations.errors import BackupError
from costudy_pipelines.lib.migrations.target import Target

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


@dataclass(frozen=True)
class Client:
    path: Path
    major: int


def client_candidates(name: str) -> list[Path]:
    """Where a PostgreSQL client program may be: the embedded server's, then the PATH's."""
    found = [embedded_pg.binary(name)]
    system = shutil.which(name)
    if system:
        found.append(Path(system))
    return [path for path in dict.fromkeys(found) if path.is_file() and os.access(path, os.X_OK)]


@functools.cache
def _major(path: Path) -> int | None:
    try:
        result = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=10
        )
    except OSError:
        return None
    match = _VERSION.search(result.stdout)
    return int(match.group(1)) if match else None


def choose_client(name: str, server_major: int, candidates: list[Path] | None = None) -> Client:
    """The first candidate at least as new as the server; BackupError naming all when none is."""
    seen = []
    for path in client_candidates(name) if candidates is None else candidates:
        major = _major(path)
        seen.append(f"{path} ({major or 'unknown version'})")
        if major is not None and major >= server_major:
            return Client(path, major)
    found = ", ".join(seen) or "none"
    raise BackupError(
        f"no {name} can handle PostgreSQL {server_major} (found: {found}): install the "
        f"PostgreSQL {server_major} client tools, or pass --skip-backup if you accept "
        "applying to production without a backup"
    )


def _split_password(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and the environment that carries the password."""
    params = conninfo_to_dict(dsn)
    password = params.pop("password", None)
    env = dict(os.environ, PGAPPNAME="costudy-migrate")
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        result = subprocess.run(args, capture_output=True, text=True, env=env)
    except OSError as exc:
        raise BackupError(f"could not {what}: {exc}") from None
    if result.returncode != 0:
        detail = " | ".join(result.stderr.strip().splitlines()[-3:]) or f"exit {result.returncode}"
        raise BackupError(f"could not {what}: {detail}")


def backup(target: Target, directory: Path, *, server_major: int, version: int | None) -> Path:
    """Dump `target` (custom format) into `directory`; return the file's path."""
    client = choose_client("pg_dump", server_major)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    at = f"v{version}" if version is not None else "untracked"
    path = directory / f"{target.database}-{target.environment}-{stamp}-{at}.dump"
    partial = path.with_suffix(".partial")  # a crash never leaves a file that looks complete
    dsn, env = _split_password(target.dsn)
    _run(
        [str(client.path), "--format=custom", "--no-password", f"--file={partial}", dsn],
        env,
        f"back up {target.label} ({target.masked_url}) with {client.path}",
    )
    partial.rename(path)
    return path


def restore(path: Path, target: Target, *, server_major: int) -> None:
    """Restore a backup into an (empty) database, in one transaction, stopping at any error."""
    client = choose_client("pg_restore", server_major)
    dsn, env = _split_password(target.dsn)
    _run(
        [
            str(client.path),
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            f"--dbname={dsn}",
            str(path),
        ],
        env,
        f"restore {path} into {target.label} with {client.path}",
    )


@dataclass(frozen=True)
class BackupFile:
    path: Path
    environment: str
    taken_at: datetime
    version: str  # "v12", or "untracked"
    size: int


_BACKUP_NAME = re.compile(
    r"^(?P<environment>[^-]+)-(?P<stamp>\d{8}T\d{12}Z)-(?P<version>v\d+|untracked)\.dump$"
)


def list_backups(directory: Path, database: str) -> list[BackupFile]:
    """The backups of `database` in `directory`, newest first."""
    found = []
    for path in directory.glob(f"{database}-*.dump") if directory.is_dir() else ():
        match = _BACKUP_NAME.match(path.name.removeprefix(f"{database}-"))
        if match:
            taken_at = datetime.strptime(match["stamp"], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
            found.append(
                BackupFile(
                    path, match["environment"], taken_at, match["version"], path.stat().st_size
                )
            )
    return sorted(found, key=lambda backup: backup.taken_at, reverse=True)


_USER_RELATIONS = """
select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%%'
   and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
"""


def restore_into_empty(path: Path, target: Target) -> None:
    """Restore `path` into `target`, which must hold no tables yet (nothing is overwritten)."""
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    with target.connect() as conn:
        [(relations,)] = conn.execute(_USER_RELATIONS).fetchall()
        server_major = conn.info.server_version // 10000
    if relations:
        raise BackupError(
            f"{target.label} ({target.masked_url}) is not empty ({relations} tables, views or "
            "sequences): restore into a new database, then point the environment's variable at it"
        )
    restore(path, target, server_major=server_major)
