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


_IDENT = r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*'
# Where a pg_dump script names a role (one statement per line for these): ownership, grants and
# revokes, default privileges, policies, and the grantor switches of SET SESSION AUTHORIZATION.
_ROLE_PLACES = (
    re.compile(rf"\bOWNER TO (?P<role>{_IDENT});$"),
    re.compile(rf"^(?:GRANT|REVOKE) .* (?:TO|FROM) (?P<role>{_IDENT})(?: WITH GRANT OPTION)?;$"),
    re.compile(rf"^ALTER DEFAULT PRIVILEGES FOR ROLE (?P<role>{_IDENT}) "),
    re.compile(rf"^ALTER DEFAULT PRIVILEGES .* (?:TO|FROM) (?P<role>{_IDENT});$"),
    re.compile(rf"^SET SESSION AUTHORIZATION (?P<role>{_IDENT});$"),
    re.compile(rf"^CREATE POLICY .* TO (?P<role>{_IDENT})(?: USING| WITH CHECK|;|$)"),
)
_NOT_ROLES = frozenset({"public", "current_user", "session_user", "current_role"})


def _unquote(identifier: str) -> str:
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier.lower()


def _quote(role: str) -> str:
    return '"' + role.replace('"', '""') + '"'


def _statement_lines(script: str) -> list[tuple[int, str]]:
    """(index, line) of the script's lines outside COPY data (rows may hold any text)."""
    lines, in_copy = [], False
    for index, line in enumerate(script.split("\n")):
        if in_copy:
            in_copy = line != "\\."
        elif line.startswith("COPY ") and line.endswith("FROM stdin;"):
            in_copy = True
        else:
            lines.append((index, line))
    return lines


def referenced_roles(script: str) -> set[str]:
    """The roles a pg_dump script gives objects to, grants to, or acts as."""
    roles = set()
    for _, line in _statement_lines(script):
        for place in _ROLE_PLACES:
            match = place.search(line)
            if match:
                roles.add(_unquote(match["role"]))
    return roles - _NOT_ROLES


def map_roles(script: str, mapping: dict[str, str]) -> str:
    """The script with each role of `mapping` replaced where a role is named (not in data)."""
    lines = script.split("\n")
    for index, line in _statement_lines(script):
        for place in _ROLE_PLACES:
            match = place.search(line)
            if match and _unquote(match["role"]) in mapping:
                role = _quote(mapping[_unquote(match["role"])])
                line = line[: match.start("role")] + role + line[match.end("role") :]
        lines[index] = line
    return "\n".join(lines)


@dataclass(frozen=True)
class RestoreReport:
    roles: tuple[str, ...]  # every role the backup's objects belong or are granted to
    mapped: dict[str, str]  # a role the target cluster lacks → the role used in its place

    def describe(self) -> list[str]:
        return [
            f"role {old} does not exist on the target: its objects and grants went to {new}"
            for old, new in sorted(self.mapped.items())
        ]


def _script(client: Client, path: Path, *, schema_only: bool) -> str:
    args = [str(client.path), "--file=-", str(path)]
    if schema_only:
        args.insert(1, "--schema-only")
    try:
        result = subprocess.run(args, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BackupError(f"could not read {path} with {client.path}: {exc}") from None
    if result.returncode != 0:
        detail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise BackupError(f"could not read {path} with {client.path}: {detail}")
    return result.stdout


def _existing_roles(target: Target) -> tuple[set[str], str]:
    with target.connect() as conn:
        roles = {row[0] for row in conn.execute("select rolname from pg_roles")}
        [(current,)] = conn.execute("select current_user").fetchall()
    return roles, current


def restore(
    path: Path,
    target: Target,
    *,
    server_major: int,
    role_map: dict[str, str] | None = None,
) -> RestoreReport:
    """Restore a backup into an (empty) database, in one transaction, stopping at any error,
    with its owners and grants.

    A role the target cluster lacks is replaced by `role_map`'s role for it, else by the
    restoring user; the report says which. Without such roles, pg_restore restores the
    ownership and privileges exactly as dumped.
    """
    client = choose_client("pg_restore", server_major)
    roles = referenced_roles(_script(client, path, schema_only=True))
    existing, current = _existing_roles(target)
    role_map = role_map or {}
    mapping = {role: role_map.get(role, current) for role in sorted(roles - existing)}
    unknown = sorted({new for new in mapping.values() if new not in existing})
    if unknown:
        raise BackupError(
            f"cannot map roles to {', '.join(unknown)}: no such role in {target.label}"
        )
    dsn, env = _split_password(target.dsn)
    what = f"restore {path} into {target.label} with {client.path}"
    if not mapping:
        _run(
            [
                str(client.path),
                "--exit-on-error",
                "--single-transaction",
                "--no-password",
                f"--dbname={dsn}",
                str(path),
            ],
            env,
            what,
        )
    else:
        script = map_roles(_script(client, path, schema_only=False), mapping)
        psql = choose_client("psql", 0)
        try:
            result = subprocess.run(
                [
                    str(psql.path),
                    "--no-psqlrc",
                    "--quiet",
                    "--single-transaction",
                    "--set=ON_ERROR_STOP=1",
                    "--no-password",
                    f"--dbname={dsn}",
                ],
                input=script,
                capture_output=True,
                text=True,
                env=env,
            )
        except OSError as exc:
            raise BackupError(f"could not {what}: {exc}") from None
        if result.returncode != 0:
            detail = " | ".join(result.stderr.strip().splitlines()[-3:])
            raise BackupError(f"could not {what}: {detail or f'exit {result.returncode}'}")
    return RestoreReport(tuple(sorted(roles)), mapping)


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


def restore_into_empty(
    path: Path, target: Target, role_map: dict[str, str] | None = None
) -> RestoreReport:
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
    return restore(path, target, server_major=server_major, role_map=role_map)
