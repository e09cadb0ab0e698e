"""The migration files of one database folder: `NNN-name.sql` and optional `NNN-name.down.sql`.

Files are ordered by their number as an integer (`10-` after `9-`). Numbers must follow each
other without gaps and without duplicates: a gap usually means a file was lost in a merge, a
duplicate that two branches picked the same number. Both are errors, reported all at once.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from costudy_pipelines.lib.migrations.errors import DiscoveryError

_FILE_NAME = re.compile(r"^(?P<version>\d+)-(?P<slug>[^.]+?)(?P<down>\.down)?\.sql$")
FILE_PATTERN = "NNN-name.sql (and NNN-name.down.sql)"


def normalise(raw: bytes, path: Path) -> str:
    """The text that is checksummed and executed: UTF-8, no BOM, `\\n` line endings."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DiscoveryError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def checksum(text: str) -> str:
    """SHA-256 (hex) of normalised text: the same file checked out on Windows has the same sum."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # the up file's name, e.g. "001-initial-setup.sql"
    path: Path
    sql: str
    checksum: str
    down_sql: str | None = None

    @property
    def down_name(self) -> str:
        return self.name.removesuffix(".sql") + ".down.sql"


@dataclass(frozen=True)
class MigrationSet:
    """One database's migrations in order; empty when the folder is missing or empty."""

    database: str
    folder: Path
    migrations: tuple[Migration, ...]

    def __iter__(self):
        return iter(self.migrations)

    def __len__(self) -> int:
        return len(self.migrations)

    def by_version(self) -> dict[int, Migration]:
        return {migration.version: migration for migration in self.migrations}

    @property
    def latest(self) -> int | None:
        return self.migrations[-1].version if self.migrations else None

    def fingerprint(self) -> str:
        """Changes whenever any file (up or down) changes: for naming test template databases."""
        digest = hashlib.sha256()
        for migration in self.migrations:
            digest.update(f"{migration.version}:{migration.checksum}:".encode())
            digest.update(checksum(migration.down_sql or "").encode())
        return digest.hexdigest()[:16]


@dataclass
class _Found:
    up: dict[int, list[tuple[str, Path]]]
    down: dict[int, list[tuple[str, Path]]]
    problems: list[str]


def _scan(folder: Path) -> _Found:
    found = _Found({}, {}, [])
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix != ".sql":
            continue
        match = _FILE_NAME.match(path.name)
        if not match:
            found.problems.append(f"{path.name} does not match {FILE_PATTERN}")
            continue
        side = found.down if match["down"] else found.up
        side.setdefault(int(match["version"]), []).append((match["slug"], path))
    return found


def _check(found: _Found) -> None:
    for side, label in ((found.up, "files"), (found.down, "down files")):
        for version, files in sorted(side.items()):
            if len(files) > 1:
                names = ", ".join(path.name for _, path in files)
                found.problems.append(f"version {version} is used by several {label}: {names}")
    versions = sorted(found.up)
    for previous, current in itertools.pairwise(versions):
        if current != previous + 1:
            missing = f"{previous + 1}" + (f"–{current - 1}" if current - previous > 2 else "")
            found.problems.append(
                f"versions jump from {previous} to {current}: {missing} missing (no gaps allowed)"
            )
    for version, files in sorted(found.down.items()):
        up = found.up.get(version)
        if not up:
            found.problems.append(f"{files[0][1].name} has no up file with version {version}")
        elif up[0][0] != files[0][0]:
            found.problems.append(f"{files[0][1].name} does not match its up file {up[0][1].name}")


def discover(folder: Path, *, database: str | None = None) -> MigrationSet:
    """Read and check every migration in `folder`; raise DiscoveryError listing every problem."""
    folder = Path(folder)
    name = database or folder.name
    if not folder.is_dir():
        return MigrationSet(name, folder, ())
    found = _scan(folder)
    _check(found)
    if found.problems:
        raise DiscoveryError(f"{folder}: " + "; ".join(found.problems))
    migrations = []
    for version, [(_, path)] in sorted(found.up.items()):
        sql = normalise(path.read_bytes(), path)
        down = found.down.get(version)
        down_sql = normalise(down[0][1].read_bytes(), down[0][1]) if down else None
        migrations.append(Migration(version, path.name, path, sql, checksum(sql), down_sql))
    return MigrationSet(name, folder, tuple(migrations))
