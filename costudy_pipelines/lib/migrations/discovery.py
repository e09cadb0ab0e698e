"""The migration files of one database folder, in any of the common layouts.

Layouts (configured per database with `layout = ...`, or detected from the file names):

- `costudy`: `001-name.sql`, optional `001-name.down.sql`;
- `golang-migrate`: `0001_name.up.sql` and `0001_name.down.sql`;
- `flyway`: `V1__name.sql`, optional undo `U1__name.sql`;
- `dbmate`: `20240101120000_name.sql` (dbmate and Rails-style timestamps), the up and down
  parts in one file after `-- migrate:up` / `-- migrate:down`, or an optional `.down.sql`.

Files are ordered by their version as an integer (`10` after `9`, timestamps by time). Gaps
are allowed (timestamps are all gaps); a version used twice is an error, and so is a file
that slips in below an applied version (unless the database allows `out_of_order`), which
the runner decides against the database.

Placeholders `${name}` are filled at apply time from the configuration (see `render`). The
checksum is over the text *before* substitution: the same file applied to dev and prod with
different values (a schema, a role) has the same checksum in both, so promotion can check
that prod takes exactly what dev took, and changing a value never makes applied files look
edited.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from costudy_pipelines.lib.migrations.errors import DiscoveryError
from costudy_pipelines.lib.migrations.sqltext import line_of


class Layout(StrEnum):
    COSTUDY = "costudy"
    GOLANG_MIGRATE = "golang-migrate"
    FLYWAY = "flyway"
    DBMATE = "dbmate"


@dataclass(frozen=True)
class _Naming:
    pattern: re.Pattern[str]  # groups: version, slug, and down (set for a down/undo file)
    shape: str  # how the names look, for error messages


NAMINGS = {
    Layout.COSTUDY: _Naming(
        re.compile(r"^(?P<version>\d+)-(?P<slug>.+?)(?P<down>\.down)?\.sql$"),
        "NNN-name.sql (and NNN-name.down.sql)",
    ),
    Layout.GOLANG_MIGRATE: _Naming(
        re.compile(r"^(?P<version>\d+)_(?P<slug>.+)\.(?:up|(?P<down>down))\.sql$"),
        "NNNN_name.up.sql and NNNN_name.down.sql",
    ),
    Layout.FLYWAY: _Naming(
        re.compile(r"^(?:V|(?P<down>U))(?P<version>\d+)__(?P<slug>.+)\.sql$"),
        "V1__name.sql (and undo U1__name.sql)",
    ),
    Layout.DBMATE: _Naming(
        re.compile(r"^(?!.*\.up\.sql$)(?P<version>\d+)_(?P<slug>.+?)(?P<down>\.down)?\.sql$"),
        "YYYYMMDDHHMMSS_name.sql (and YYYYMMDDHHMMSS_name.down.sql)",
    ),
}
# Names in a known layout that the runner cannot take, and why.
_UNSUPPORTED = (
    (re.compile(r"^R__.+\.sql$"), "Flyway repeatable migrations (R__) are not supported"),
    (
        re.compile(r"^[VU]\d+[._]\d[\d._]*__.+\.sql$"),
        "dotted Flyway versions (V1.1__) are not supported: versions are whole numbers",
    ),
)
_DBMATE_UP = re.compile(r"^--\s*migrate:up\b(?P<options>.*)$", re.MULTILINE)
_DBMATE_DOWN = re.compile(r"^--\s*migrate:down\b.*$", re.MULTILINE)
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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


def substitute(text: str, values: Mapping[str, str], where: str) -> str:
    """`text` with every `${name}` replaced; DiscoveryError naming each unknown one and its line."""
    unknown = [
        f"${{{match[1]}}} at line {line_of(text, match.start())}"
        for match in PLACEHOLDER.finditer(text)
        if match[1] not in values
    ]
    if unknown:
        known = ", ".join(sorted(values)) or "none"
        raise DiscoveryError(
            f"{where}: no value for placeholder {', '.join(unknown)} (configured: {known}); "
            "set it under `placeholders` in the environments file"
        )
    return PLACEHOLDER.sub(lambda match: values[match[1]], text)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # the up file's name, e.g. "001-initial-setup.sql"
    path: Path
    sql: str  # what runs (placeholders filled once rendered)
    checksum: str  # over the up text before placeholders
    down_sql: str | None = None
    down_file: str | None = None  # the down file's name, or where in the file the down part is

    @property
    def down_name(self) -> str:
        return self.down_file or self.name.removesuffix(".sql") + ".down.sql"

    def render(self, values: Mapping[str, str]) -> Migration:
        """The same migration with its placeholders filled (the checksum stays the file's)."""
        down = self.down_sql
        return replace(
            self,
            sql=substitute(self.sql, values, str(self.path)),
            down_sql=substitute(down, values, self.down_name) if down is not None else None,
        )


@dataclass(frozen=True)
class MigrationSet:
    """One database's migrations in order; empty when the folder is missing or empty."""

    database: str
    folder: Path
    migrations: tuple[Migration, ...]
    layout: Layout = Layout.COSTUDY
    out_of_order: bool = False  # pending files below applied versions may run

    def __iter__(self) -> Iterator[Migration]:
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
    up: dict[int, list[tuple[str, Path]]] = field(default_factory=dict)
    down: dict[int, list[tuple[str, Path]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def detect_layout(names: list[str]) -> Layout:
    """The layout every name follows; else the one most names follow (its misfits are errors)."""
    if not names:
        return Layout.COSTUDY
    matching = {
        layout: sum(1 for name in names if naming.pattern.match(name))
        for layout, naming in NAMINGS.items()
    }
    return max(matching, key=lambda layout: matching[layout])  # first layout wins ties


def _scan(paths: list[Path], layout: Layout) -> _Found:
    found, naming = _Found(), NAMINGS[layout]
    for path in paths:
        unsupported = next((why for rule, why in _UNSUPPORTED if rule.match(path.name)), None)
        match = naming.pattern.match(path.name)
        if unsupported or not match:
            found.problems.append(
                f"{path.name}: {unsupported}"
                if unsupported
                else f"{path.name} does not match {naming.shape} (layout {layout})"
            )
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
    for version, files in sorted(found.down.items()):
        up = found.up.get(version)
        if not up:
            found.problems.append(f"{files[0][1].name} has no up file with version {version}")
        elif up[0][0] != files[0][0]:
            found.problems.append(f"{files[0][1].name} does not match its up file {up[0][1].name}")


def _sections(text: str, path: Path) -> tuple[str, str | None]:
    """A dbmate file's up and down parts, each keeping its line numbers in the file.

    `-- migrate:up transaction:false` becomes the runner's own no-transaction directive.
    """
    up_marker = _DBMATE_UP.search(text)
    if up_marker is None:
        return text, None
    down_marker = _DBMATE_DOWN.search(text, up_marker.end())
    up = text[: down_marker.start()] if down_marker else text
    if "transaction:false" in up_marker["options"]:
        line = "-- costudy:no-transaction"
        up = up[: up_marker.start()] + line + up[up_marker.end() :]
    if down_marker is None:
        return up, None
    down = "\n" * text.count("\n", 0, down_marker.start()) + text[down_marker.start() :]
    if "transaction:false" in down_marker[0]:
        raise DiscoveryError(f"{path}: a down part always runs in a transaction")
    return up, down


def _migration(version: int, up: Path, down: Path | None, layout: Layout) -> Migration:
    text = normalise(up.read_bytes(), up)
    up_sql, down_sql = _sections(text, up) if layout is Layout.DBMATE else (text, None)
    down_file = f"{up.name} (migrate:down)" if down_sql is not None else None
    if down is not None:
        down_sql, down_file = normalise(down.read_bytes(), down), down.name
    return Migration(version, up.name, up, up_sql, checksum(up_sql), down_sql, down_file)


def discover(
    folder: Path,
    *,
    database: str | None = None,
    layout: Layout | None = None,
    out_of_order: bool = False,
) -> MigrationSet:
    """Read and check every migration in `folder`; raise DiscoveryError listing every problem.

    `layout` None: detected from the file names.
    """
    folder = Path(folder)
    name = database or folder.name
    if not folder.is_dir():
        return MigrationSet(name, folder, (), layout or Layout.COSTUDY, out_of_order)
    paths = sorted(path for path in folder.iterdir() if path.is_file() and path.suffix == ".sql")
    layout = layout or detect_layout([path.name for path in paths])
    found = _scan(paths, layout)
    _check(found)
    if found.problems:
        raise DiscoveryError(f"{folder}: " + "; ".join(found.problems))
    migrations = tuple(
        _migration(
            version, path, found.down[version][0][1] if version in found.down else None, layout
        )
        for version, [(_, path)] in sorted(found.up.items())
    )
    return MigrationSet(name, folder, migrations, layout, out_of_order)
