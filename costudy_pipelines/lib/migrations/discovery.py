"""The migration files of one database folder, in any of the common layouts.

Layouts (configured per database with `layout = ...`, or detected from the file names):

- `costudy`: `001-name.sql`, optional `001-name.down.sql`;
- `golang-migrate`: `0001_name.up.sql` and `0001_name.down.sql`;
- `flyway`: `V1__name.sql`, optional undo `U1__name.sql`;
- `dbmate`: `20240101120000_name.sql` (dbmate and Rails-style timestamps), the up and down
  parts in one file after `-- migrate:up` / `-- migrate:down`, or an optional `.down.sql`;
  goose files (`00001_name.sql` with `-- +goose Up` / `-- +goose Down`, and
  `-- +goose NO TRANSACTION`) are read the same way;
- `diesel`: one folder per migration, `2019-02-26-002946_name/` (or with a `-0000` sequence,
  or a bare 14-digit timestamp) holding `up.sql` and an optional `down.sql`;
- `prisma`: one folder per migration, `01_name/` or `20240101120000_name/` holding
  `migration.sql` (no down part); `migration_lock.toml` beside them is ignored.

Files are ordered by their version as an integer (`10` after `9`, timestamps by time). Gaps
are allowed (timestamps are all gaps); a version used twice is an error, and so is a file
that slips in below an applied version (unless the database allows `out_of_order`), which
the runner decides against the database.

Placeholders (`${name}` by default; another prefix/suffix, or Go-template
`{{ index .Options "name" }}`, per database: `PlaceholderSyntax`) are filled at apply time from
the configuration (see `render`). Comments naming another tool's no-transaction marker (say
`-- postgres-migrations disable-transaction`), configured per database, make a file run
statement by statement as `-- costudy:no-transaction` does, and so do the tools' own
settings beside a file: Diesel's `metadata.toml` with `run_in_transaction = false`, Flyway's
`V1__name.sql.conf` with `executeInTransaction=false`. The
checksum is over the text *before* substitution: the same file applied to dev and prod with
different values (a schema, a role) has the same checksum in both, so promotion can check
that prod takes exactly what dev took, and changing a value never makes applied files look
edited.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from costudy_pipelines.lib.migrations.errors import DiscoveryError
from costudy_pipelines.lib.migrations.sqltext import SqlLexError, comments, line_of


class Layout(StrEnum):
    COSTUDY = "costudy"
    GOLANG_MIGRATE = "golang-migrate"
    FLYWAY = "flyway"
    DBMATE = "dbmate"
    DIESEL = "diesel"
    PRISMA = "prisma"


FOLDER_LAYOUTS = frozenset({Layout.DIESEL, Layout.PRISMA})


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
# Flyway's dotted versions (`V1.1__`, `V2_0_3__`), taken when the database says
# `dotted_versions = true`: each of up to four parts below 10,000 becomes one group of four
# digits (V1.2 → 1_0002_0000_0000), so they order as Flyway orders them and 1.0 equals 1.
_FLYWAY_DOTTED = _Naming(
    re.compile(r"^(?:V|(?P<down>U))(?P<version>\d+(?:[._]\d+)*)__(?P<slug>.+)\.sql$"),
    "V1__name.sql or V1.2__name.sql (and undo U1.2__name.sql)",
)
_PART = 10_000


def flyway_version(text: str) -> int:
    """A dotted Flyway version (`1.2.3`, `1_2`) as one number that sorts the same way."""
    parts = [int(part) for part in re.split(r"[._]", text)]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    if len(parts) > 4 or any(part >= _PART for part in parts[1:]) or parts[0] >= 900_000:
        raise DiscoveryError(
            f"version {text}: dotted versions take up to four parts, each below 10000 "
            "(the first below 900000)"
        )
    parts += [0] * (4 - len(parts))
    return sum(part * _PART ** (3 - index) for index, part in enumerate(parts))


# Names in a known layout that the runner cannot take, and why.
_UNSUPPORTED = (
    (re.compile(r"^R__.+\.sql$"), "Flyway repeatable migrations (R__) are not supported"),
    (
        re.compile(r"^[VU]\d+[._]\d[\d._]*__.+\.sql$"),
        "dotted Flyway versions (V1.1__) need `dotted_versions = true` for the database (set "
        "before the first apply: it renumbers every version)",
    ),
)
_DBMATE_UP = re.compile(r"^--\s*migrate:up\b(?P<options>.*)$", re.MULTILINE)
_DBMATE_DOWN = re.compile(r"^--\s*migrate:down\b.*$", re.MULTILINE)
# goose's sections and its own no-transaction annotation (files named like dbmate's).
_GOOSE_UP = re.compile(r"^--\s*\+goose\s+Up\b.*$", re.MULTILINE | re.IGNORECASE)
_GOOSE_DOWN = re.compile(r"^--\s*\+goose\s+Down\b.*$", re.MULTILINE | re.IGNORECASE)
_GOOSE_NO_TRANSACTION = re.compile(
    r"^--\s*\+goose\s+NO\s+TRANSACTION\s*$", re.MULTILINE | re.IGNORECASE
)
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_GO_TEMPLATE = re.compile(r'\{\{-?\s*index\s+\.Options\s+"([A-Za-z_][A-Za-z0-9_.-]*)"\s*-?\}\}')
# Diesel: `2019-02-26-002946_name`, `2025-10-08-084508-0000_name` or `20190226002946_name`.
_DIESEL = re.compile(
    r"^(?P<stamp>\d{4}-\d{2}-\d{2}-\d{6}|\d{14})(?:-(?P<sequence>\d{4}))?_(?P<slug>.+)$"
)
_PRISMA = re.compile(r"^(?P<version>\d+)_(?P<slug>.+)$")
# Up and down file of a folder-per-migration layout.
_FOLDER_FILES = {Layout.DIESEL: ("up.sql", "down.sql"), Layout.PRISMA: ("migration.sql", None)}


@dataclass(frozen=True)
class PlaceholderSyntax:
    """How a folder writes placeholders: `${name}` (Flyway's default prefix and suffix), any
    other prefix/suffix, or golang-migrate's Go template `{{ index .Options "name" }}`."""

    prefix: str = "${"
    suffix: str = "}"
    go_template: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        if self.go_template:
            return _GO_TEMPLATE
        if (self.prefix, self.suffix) == ("${", "}"):
            return PLACEHOLDER
        return re.compile(
            re.escape(self.prefix) + r"([A-Za-z_][A-Za-z0-9_.-]*)" + re.escape(self.suffix)
        )

    def show(self, name: str) -> str:
        """How `name` is written in a file."""
        if self.go_template:
            return f'{{{{ index .Options "{name}" }}}}'
        return f"{self.prefix}{name}{self.suffix}"

    def names(self, text: str) -> list[tuple[str, int]]:
        """Every placeholder in `text`: its name and line."""
        return [(match[1], line_of(text, match.start())) for match in self.pattern.finditer(text)]


DEFAULT_SYNTAX = PlaceholderSyntax()


def _marker_key(marker: str) -> str:
    """A marker compared without its `--`, case or spacing."""
    return " ".join(marker.strip().removeprefix("--").split()).lower()


def has_marker(text: str, markers: tuple[str, ...]) -> bool:
    """Whether a comment of `text` (not a string) is one of `markers` (another tool's own
    no-transaction comment, such as `-- postgres-migrations disable-transaction`)."""
    if not markers:
        return False
    keys = {_marker_key(marker) for marker in markers}
    try:
        found = [comment.text for comment in comments(text)]
    except SqlLexError:  # the analysis reports the file's SQL; here, line comments will do
        found = [line.strip() for line in text.splitlines() if line.strip().startswith("--")]
    for body in found:
        body = body[2:-2] if body.startswith("/*") else body
        if _marker_key(body) in keys:
            return True
    return False


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


def unknown_placeholders(
    text: str, known: Collection[str], syntax: PlaceholderSyntax = DEFAULT_SYNTAX
) -> list[str]:
    """Each placeholder of `text` with no configured value, with its line."""
    return [
        f"{syntax.show(name)} at line {line}"
        for name, line in syntax.names(text)
        if name not in known
    ]


def substitute(
    text: str, values: Mapping[str, str], where: str, syntax: PlaceholderSyntax = DEFAULT_SYNTAX
) -> str:
    """`text` with every placeholder replaced; DiscoveryError naming each unknown one and its
    line."""
    unknown = unknown_placeholders(text, values, syntax)
    if unknown:
        known = ", ".join(sorted(values)) or "none"
        raise DiscoveryError(
            f"{where}: no value for placeholder {', '.join(unknown)} (configured: {known}); "
            "set it under `placeholders` in the environments file"
        )
    return syntax.pattern.sub(lambda match: values[match[1]], text)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # the up file's name, e.g. "001-initial-setup.sql"
    path: Path
    sql: str  # what runs (placeholders filled once rendered)
    checksum: str  # over the up text before placeholders
    down_sql: str | None = None
    down_file: str | None = None  # the down file's name, or where in the file the down part is
    # Runs statement by statement: another tool's no-transaction marker is in the file.
    no_transaction: bool = False
    syntax: PlaceholderSyntax = field(default=DEFAULT_SYNTAX, compare=False)

    @property
    def down_name(self) -> str:
        if self.down_file:
            return self.down_file
        folder, slash, _ = self.name.rpartition("/")  # a folder-per-migration layout
        return f"{folder}/down.sql" if slash else self.name.removesuffix(".sql") + ".down.sql"

    def render(self, values: Mapping[str, str]) -> Migration:
        """The same migration with its placeholders filled (the checksum stays the file's)."""
        down = self.down_sql
        syntax = self.syntax
        return replace(
            self,
            sql=substitute(self.sql, values, str(self.path), syntax),
            down_sql=substitute(down, values, self.down_name, syntax) if down is not None else None,
        )


@dataclass(frozen=True)
class MigrationSet:
    """One database's migrations in order; empty when the folder is missing or empty."""

    database: str
    folder: Path
    migrations: tuple[Migration, ...]
    layout: Layout = Layout.COSTUDY
    out_of_order: bool = False  # pending files below applied versions may run
    dotted_versions: bool = False  # Flyway's V1.1__ numbered by flyway_version

    def __iter__(self) -> Iterator[Migration]:
        return iter(self.migrations)

    def __len__(self) -> int:
        return len(self.migrations)

    def by_version(self) -> dict[int, Migration]:
        return {migration.version: migration for migration in self.migrations}

    def version_of(self, text: str) -> int:
        """The version `text` names: a number, a file or folder name, or its version part
        (`2019-02-26-002946` for Diesel); DiscoveryError when no migration has it."""
        text = text.strip()
        for migration in self.migrations:
            stem = migration.name.split("/")[0].removesuffix(".sql")
            written = stem.split("__")[0] if "__" in stem else stem.split("_")[0]
            if text in (migration.name, stem, written, written.removeprefix("V")):
                return migration.version
        if self.dotted_versions and re.fullmatch(r"V?\d+(?:[._]\d+)*", text):
            dotted = flyway_version(text.removeprefix("V"))
            if dotted in self.by_version():
                return dotted
        if text.isdigit() and int(text) in self.by_version():
            return int(text)
        raise DiscoveryError(f"{self.folder}: no migration has version {text!r}")

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


def _scan(paths: list[Path], layout: Layout, dotted: bool = False) -> _Found:
    dotted = dotted and layout is Layout.FLYWAY
    found, naming = _Found(), _FLYWAY_DOTTED if dotted else NAMINGS[layout]
    rules = _UNSUPPORTED[:1] if dotted else _UNSUPPORTED
    for path in paths:
        unsupported = next((why for rule, why in rules if rule.match(path.name)), None)
        match = naming.pattern.match(path.name)
        if unsupported or not match:
            found.problems.append(
                f"{path.name}: {unsupported}"
                if unsupported
                else f"{path.name} does not match {naming.shape} (layout {layout})"
            )
            continue
        side = found.down if match["down"] else found.up
        try:
            version = flyway_version(match["version"]) if dotted else int(match["version"])
        except DiscoveryError as exc:
            found.problems.append(f"{path.name}: {exc}")
            continue
        side.setdefault(version, []).append((match["slug"], path))
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


@dataclass(frozen=True)
class _Reading:
    """How a folder's files are read: placeholders and other tools' no-transaction markers."""

    syntax: PlaceholderSyntax = DEFAULT_SYNTAX
    markers: tuple[str, ...] = ()


def _goose_sections(text: str) -> tuple[str, str | None, bool] | None:
    """A goose file's up and down parts (line numbers kept) and whether it asks for no
    transaction; None when the file has no `-- +goose Up`."""
    up_marker = _GOOSE_UP.search(text)
    if up_marker is None:
        return None
    down_marker = _GOOSE_DOWN.search(text, up_marker.end())
    no_transaction = _GOOSE_NO_TRANSACTION.search(text) is not None
    if down_marker is None:
        return text, None, no_transaction
    down = "\n" * text.count("\n", 0, down_marker.start()) + text[down_marker.start() :]
    return text[: down_marker.start()], down, no_transaction


def _tool_settings(up: Path, layout: Layout) -> bool:
    """Whether the tool's own settings file beside the migration turns its transaction off:
    Diesel's `metadata.toml` (`run_in_transaction = false`), Flyway's `V1__x.sql.conf`
    (`executeInTransaction=false`)."""
    if layout is Layout.DIESEL and (up.parent / "metadata.toml").is_file():
        try:
            settings = tomllib.loads((up.parent / "metadata.toml").read_text())
        except tomllib.TOMLDecodeError as exc:
            raise DiscoveryError(f"{up.parent / 'metadata.toml'}: {exc}") from None
        return settings.get("run_in_transaction", True) is False
    conf = up.with_name(up.name + ".conf")
    if layout is Layout.FLYWAY and conf.is_file():
        for line in conf.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "executeInTransaction" and value.strip().lower() == "false":
                return True
    return False


def _migration(
    version: int,
    up: Path,
    down: Path | None,
    layout: Layout,
    reading: _Reading,
    name: str | None = None,
) -> Migration:
    text = normalise(up.read_bytes(), up)
    goose = _goose_sections(text) if layout is Layout.DBMATE else None
    no_transaction = _tool_settings(up, layout)
    if goose is not None:
        up_sql, down_sql, goose_no_transaction = goose
        no_transaction = no_transaction or goose_no_transaction
    elif layout is Layout.DBMATE:
        up_sql, down_sql = _sections(text, up)
    else:
        up_sql, down_sql = text, None
    section = "+goose Down" if goose is not None else "migrate:down"
    down_file = f"{up.name} ({section})" if down_sql is not None else None
    name = name or up.name
    if down is not None:
        down_sql = normalise(down.read_bytes(), down)
        down_file = f"{down.parent.name}/{down.name}" if layout in FOLDER_LAYOUTS else down.name
    return Migration(
        version,
        name,
        up,
        up_sql,
        checksum(up_sql),
        down_sql,
        down_file,
        no_transaction=no_transaction or has_marker(up_sql, reading.markers),
        syntax=reading.syntax,
    )


def _folder_version(layout: Layout, name: str) -> tuple[int, str] | None:
    """A migration folder's version and slug, None when the name does not fit the layout.

    Diesel's `YYYY-MM-DD-HHMMSS[-NNNN]` becomes YYYYMMDDHHMMSSNNNN, so folders with and
    without the sequence order as Diesel orders them (by name).
    """
    if layout is Layout.DIESEL:
        match = _DIESEL.match(name)
        if match is None:
            return None
        stamp = int(match["stamp"].replace("-", ""))
        return stamp * 10_000 + int(match["sequence"] or 0), match["slug"]
    match = _PRISMA.match(name)
    return (int(match["version"]), match["slug"]) if match else None


def _discover_folders(
    folder: Path, name: str, layout: Layout, out_of_order: bool, reading: _Reading
) -> MigrationSet:
    up_name, down_name = _FOLDER_FILES[layout]
    shape = {
        Layout.DIESEL: f"YYYY-MM-DD-HHMMSS[-NNNN]_name/{up_name}",
        Layout.PRISMA: f"NN_name/{up_name} (or YYYYMMDDHHMMSS_name/{up_name})",
    }[layout]
    problems: list[str] = []
    found: dict[int, list[Path]] = {}
    for path in sorted(path for path in folder.iterdir() if path.is_dir()):
        if path.name.startswith("."):
            continue
        parsed = _folder_version(layout, path.name)
        if parsed is None:
            problems.append(f"{path.name}/ does not match {shape} (layout {layout})")
        elif not (path / up_name).is_file():
            problems.append(f"{path.name}/ has no {up_name}")
        else:
            found.setdefault(parsed[0], []).append(path)
    for version, paths in sorted(found.items()):
        if len(paths) > 1:
            names = ", ".join(path.name for path in paths)
            problems.append(f"version {version} is used by several folders: {names}")
    if problems:
        raise DiscoveryError(f"{folder}: " + "; ".join(problems))
    migrations = []
    for version, [path] in sorted(found.items()):
        down = path / down_name if down_name and (path / down_name).is_file() else None
        migrations.append(
            _migration(version, path / up_name, down, layout, reading, f"{path.name}/{up_name}")
        )
    return MigrationSet(name, folder, tuple(migrations), layout, out_of_order)


def _folder_layout(folder: Path) -> Layout | None:
    """Diesel or Prisma when the folder holds migration folders and no SQL files of its own."""
    if any(path.suffix == ".sql" for path in folder.iterdir() if path.is_file()):
        return None
    subfolders = [path for path in folder.iterdir() if path.is_dir()]
    if any((path / "migration.sql").is_file() for path in subfolders):
        return Layout.PRISMA
    if any((path / "up.sql").is_file() for path in subfolders):
        return Layout.DIESEL
    return None


def discover(
    folder: Path,
    *,
    database: str | None = None,
    layout: Layout | None = None,
    out_of_order: bool = False,
    syntax: PlaceholderSyntax = DEFAULT_SYNTAX,
    no_transaction_markers: tuple[str, ...] = (),
    dotted_versions: bool = False,
) -> MigrationSet:
    """Read and check every migration in `folder`; raise DiscoveryError listing every problem.

    `layout` None: detected from the names. `no_transaction_markers`: comments of other tools
    that mean "run this file outside a transaction".
    """
    folder = Path(folder)
    name = database or folder.name
    if not folder.is_dir():
        return MigrationSet(name, folder, (), layout or Layout.COSTUDY, out_of_order)
    reading = _Reading(syntax, tuple(no_transaction_markers))
    layout = layout or _folder_layout(folder)
    if layout in FOLDER_LAYOUTS:
        return _discover_folders(folder, name, layout, out_of_order, reading)
    paths = sorted(path for path in folder.iterdir() if path.is_file() and path.suffix == ".sql")
    if dotted_versions and layout is None:
        layout = Layout.FLYWAY  # only Flyway has dotted versions
    layout = layout or detect_layout([path.name for path in paths])
    found = _scan(paths, layout, dotted_versions)
    _check(found)
    if found.problems:
        raise DiscoveryError(f"{folder}: " + "; ".join(found.problems))
    migrations = tuple(
        _migration(
            version,
            path,
            found.down[version][0][1] if version in found.down else None,
            layout,
            reading,
        )
        for version, [(_, path)] in sorted(found.up.items())
    )
    return MigrationSet(
        name, folder, migrations, layout, out_of_order, dotted_versions and layout is Layout.FLYWAY
    )
