"""Which databases have migrations, and the environments each is promoted through.

`sql/environments.toml` (or the file COSTUDY_MIGRATIONS_CONFIG names):

    lock_timeout_seconds = 30            # optional: wait for another runner's lock
    session_lock_timeout_seconds = 10    # optional: a file's wait for a table lock (0: none)
    session_statement_timeout_seconds = 0  # optional: a file's statement limit (0: none)
    backup_dir = "/var/backups/costudy"  # optional; default $COSTUDY_HOME/backups

    [databases.platform]                 # migrations in sql/platform/ (or `folder = "..."`)
    layout = "golang-migrate"            # optional: costudy, golang-migrate, flyway, dbmate
    out_of_order = false                 # optional: let a file run below applied versions
    tracking_table = "public.schema_migrations"  # optional
    lint_after = 12                      # optional: files up to 12 are not linted
    placeholders = { schema = "app", owner = { env = "APP_OWNER" } }  # ${schema}, ${owner}
    placeholder_prefix = "${"            # optional (Flyway's): how placeholders are written
    placeholder_suffix = "}"
    placeholder_syntax = "go-template"   # optional instead: {{ index .Options "schema" }}
    no_transaction_markers = ["-- postgres-migrations disable-transaction"]  # optional
    dotted_versions = false              # optional: Flyway's V1.1__ (renumbers every version)
    environments = [                     # promotion order: first is applied first
        { name = "dev", url_env = "PLATFORM_DB_URL" },
        { name = "prod", url_env = "PLATFORM_PROD_DB_URL", production = true,
          placeholders = { owner = "app_prod" },  # overrides the database's values
          allow_destructive = [           # reviewed files, approved without editing them
            { file = "0042_drop_legacy.up.sql", reason = "legacy table emptied, JIRA-12" },
          ] },
    ]

`production = true` turns on the production-only steps: a pg_dump backup before anything is
applied, and the refusal of destructive statements unless the file carries
`-- costudy:allow-destructive` or the environment's `allow_destructive` lists it (the reason
goes to the history when the file is applied).
The session timeouts may also be set per database.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from costudy_pipelines.lib.migrations.discovery import (
    DEFAULT_SYNTAX,
    Layout,
    MigrationSet,
    PlaceholderSyntax,
    discover,
)
from costudy_pipelines.lib.migrations.errors import ConfigError
from costudy_pipelines.lib.migrations.target import Target, Timeouts
from costudy_pipelines.lib.migrations.tracking import DEFAULT, TrackingTable
from costudy_pipelines.lib.settings import PROJECT_ROOT, costudy_home

CONFIG_VAR = "COSTUDY_MIGRATIONS_CONFIG"
DEFAULT_CONFIG = PROJECT_ROOT / "sql" / "environments.toml"
DEFAULT_LOCK_TIMEOUT_S = 30.0
_TIMEOUT_KEYS = {"session_lock_timeout_seconds", "session_statement_timeout_seconds"}
_TOP_KEYS = {"lock_timeout_seconds", "backup_dir", "databases"} | _TIMEOUT_KEYS
_DATABASE_KEYS = {
    "folder",
    "environments",
    "layout",
    "out_of_order",
    "tracking_table",
    "placeholders",
    "lint_after",
    "placeholder_prefix",
    "placeholder_suffix",
    "placeholder_syntax",
    "no_transaction_markers",
    "dotted_versions",
} | _TIMEOUT_KEYS
_ENVIRONMENT_KEYS = {"name", "url_env", "production", "placeholders", "allow_destructive"}
_SYNTAXES = ("prefix-suffix", "go-template")
# A placeholder's value: the text itself, or the variable holding it.
Placeholder = str | tuple[str, str]  # ("env", "VARIABLE")


def _placeholders(raw: object, where: str) -> dict[str, Placeholder]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: placeholders must be a table of name = value")
    found: dict[str, Placeholder] = {}
    for name, value in raw.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            found[name] = str(value)
        elif isinstance(value, dict) and set(value) == {"env"} and value["env"]:
            found[name] = ("env", str(value["env"]))
        else:
            raise ConfigError(
                f'{where}: placeholder {name} must be a text or {{ env = "VARIABLE" }}, '
                f"not {value!r}"
            )
    return found


def _resolve(placeholders: Mapping[str, Placeholder], label: str) -> dict[str, str]:
    values = {}
    for name, value in placeholders.items():
        if isinstance(value, tuple):
            resolved = os.environ.get(value[1])
            if resolved is None:
                raise ConfigError(
                    f"{value[1]} is not set: it holds placeholder ${{{name}}} for {label}"
                )
            values[name] = resolved
        else:
            values[name] = value
    return values


def _approvals(raw: object, where: str) -> dict[str, str]:
    """`allow_destructive = [{ file = "...", reason = "..." }]`: file name → reason."""
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: allow_destructive must be a list of {{ file, reason }}")
    approvals: dict[str, str] = {}
    for item in raw:
        if (
            not isinstance(item, dict)
            or set(item) != {"file", "reason"}
            or not str(item["file"]).strip()
            or not str(item["reason"]).strip()
        ):
            raise ConfigError(
                f"{where}: each allow_destructive entry needs a file and a reason "
                f"(nothing else), not {item!r}"
            )
        approvals[str(item["file"]).strip()] = str(item["reason"]).strip()
    return approvals


@dataclass(frozen=True)
class Environment:
    name: str
    url_env: str
    production: bool = False
    placeholders: Mapping[str, Placeholder] = field(default_factory=dict, compare=False)
    # Files whose destructive statements are approved here, with the reason: file → reason.
    approvals: Mapping[str, str] = field(default_factory=dict, compare=False)

    def url(self) -> str:
        value = os.environ.get(self.url_env)
        if not value:
            raise ConfigError(f"{self.url_env} is not set: it names the {self.name} database")
        return value


@dataclass(frozen=True)
class DatabaseMigrations:
    name: str
    folder: Path
    environments: tuple[Environment, ...]  # promotion order
    layout: Layout | None = None  # None: detected from the file names
    out_of_order: bool = False
    tracking: TrackingTable = DEFAULT
    placeholders: Mapping[str, Placeholder] = field(default_factory=dict, compare=False)
    timeouts: Timeouts = field(default_factory=Timeouts)
    lint_after: int | None = None  # versions up to this one are not linted (applied everywhere)
    syntax: PlaceholderSyntax = DEFAULT_SYNTAX
    no_transaction_markers: tuple[str, ...] = ()
    dotted_versions: bool = False  # Flyway's V1.1__: every version renumbered (see discovery)

    def discover(self) -> MigrationSet:
        return discover(
            self.folder,
            database=self.name,
            layout=self.layout,
            out_of_order=self.out_of_order,
            syntax=self.syntax,
            no_transaction_markers=self.no_transaction_markers,
            dotted_versions=self.dotted_versions,
        )

    def placeholder_names(self, environment: Environment) -> set[str]:
        """The placeholders `environment` has a value for (without resolving variables)."""
        return set(self.placeholders) | set(environment.placeholders)

    def environment(self, name: str) -> Environment:
        for environment in self.environments:
            if environment.name == name:
                return environment
        known = ", ".join(environment.name for environment in self.environments)
        raise ConfigError(f"{self.name} has no environment {name!r} (configured: {known})")

    def upstream(self, name: str) -> Environment | None:
        """The environment promoted just before `name` (None for the first)."""
        index = self.environments.index(self.environment(name))
        return self.environments[index - 1] if index else None

    def placeholder_values(self, environment: Environment) -> dict[str, str]:
        """The database's placeholders, overridden by the environment's, resolved."""
        merged = {**self.placeholders, **environment.placeholders}
        return _resolve(merged, f"{self.name}/{environment.name}")

    def target(
        self, environment: Environment | str, *, url: str | None = None, source: str | None = None
    ) -> Target:
        """The environment as the runner's target; `url` given: reached that way instead."""
        env = self.environment(environment) if isinstance(environment, str) else environment
        return Target(
            self.name,
            env.name,
            url if url is not None else env.url(),
            source or env.url_env,
            env.production,
            self.tracking,
            self.placeholder_values(env),
            self.timeouts,
            env.approvals,
        )


@dataclass(frozen=True)
class MigrationConfig:
    path: Path
    databases: tuple[DatabaseMigrations, ...]
    lock_timeout_s: float
    backup_dir: Path

    def database(self, name: str) -> DatabaseMigrations:
        for database in self.databases:
            if database.name == name:
                return database
        known = ", ".join(database.name for database in self.databases) or "none"
        raise ConfigError(f"{self.path} configures no database {name!r} (configured: {known})")

    def select(self, names: Sequence[str] = ()) -> list[DatabaseMigrations]:
        return [self.database(name) for name in names] if names else list(self.databases)


def _unknown_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown keys {', '.join(unknown)} (allowed: {sorted(allowed)})"
        )


def _environment(raw: object, where: str) -> Environment:
    if not isinstance(raw, dict) or not raw.get("name") or not raw.get("url_env"):
        raise ConfigError(f"{where}: each environment needs a name and a url_env")
    _unknown_keys(raw, _ENVIRONMENT_KEYS, where)
    return Environment(
        str(raw["name"]),
        str(raw["url_env"]),
        bool(raw.get("production", False)),
        _placeholders(raw.get("placeholders", {}), f"{where} {raw['name']}"),
        _approvals(raw.get("allow_destructive", []), f"{where} {raw['name']}"),
    )


def _seconds(raw: dict, key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(
            f"{where}: {key} must be a number of seconds (0: no limit), not {value!r}"
        )
    return float(value)


def _timeouts(raw: dict, default: Timeouts, where: str) -> Timeouts:
    return Timeouts(
        _seconds(raw, "session_lock_timeout_seconds", default.lock_s, where),
        _seconds(raw, "session_statement_timeout_seconds", default.statement_s, where),
    )


def _version(raw: dict, key: str, where: str) -> int | None:
    value = raw.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}: {key} must be a version number, not {value!r}")
    return value


def _layout(raw: dict, where: str) -> Layout | None:
    if "layout" not in raw:
        return None
    try:
        return Layout(raw["layout"])
    except ValueError:
        known = ", ".join(layout.value for layout in Layout)
        raise ConfigError(f"{where}: unknown layout {raw['layout']!r} (known: {known})") from None


def _syntax(raw: dict, where: str) -> PlaceholderSyntax:
    syntax = raw.get("placeholder_syntax", "prefix-suffix")
    if syntax not in _SYNTAXES:
        raise ConfigError(
            f"{where}: placeholder_syntax must be one of {', '.join(_SYNTAXES)}, not {syntax!r}"
        )
    prefix = raw.get("placeholder_prefix", DEFAULT_SYNTAX.prefix)
    suffix = raw.get("placeholder_suffix", DEFAULT_SYNTAX.suffix)
    if syntax == "go-template" and ("placeholder_prefix" in raw or "placeholder_suffix" in raw):
        raise ConfigError(f"{where}: a go-template syntax has no placeholder prefix or suffix")
    if not isinstance(prefix, str) or not isinstance(suffix, str) or not prefix:
        raise ConfigError(f"{where}: placeholder_prefix and placeholder_suffix must be texts")
    return PlaceholderSyntax(prefix, suffix, go_template=syntax == "go-template")


def _markers(raw: dict, where: str) -> tuple[str, ...]:
    markers = raw.get("no_transaction_markers", [])
    if not isinstance(markers, list) or not all(
        isinstance(marker, str) and marker.strip("- ") for marker in markers
    ):
        raise ConfigError(
            f"{where}: no_transaction_markers must be a list of comments, such as "
            '["-- postgres-migrations disable-transaction"]'
        )
    return tuple(markers)


def _database(
    name: str, raw: object, base: Path, where: str, timeouts: Timeouts
) -> DatabaseMigrations:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [databases.{name}] must be a table")
    where = f"{where} [databases.{name}]"
    _unknown_keys(raw, _DATABASE_KEYS, where)
    environments = tuple(_environment(item, where) for item in raw.get("environments", []))
    if not environments:
        raise ConfigError(f"{where}: lists no environments")
    names = [environment.name for environment in environments]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: names an environment twice: {names}")
    return DatabaseMigrations(
        name,
        (base / str(raw.get("folder", name))).resolve(),
        environments,
        layout=_layout(raw, where),
        out_of_order=bool(raw.get("out_of_order", False)),
        tracking=TrackingTable.parse(str(raw["tracking_table"]), where)
        if "tracking_table" in raw
        else DEFAULT,
        placeholders=_placeholders(raw.get("placeholders", {}), where),
        timeouts=_timeouts(raw, timeouts, where),
        lint_after=_version(raw, "lint_after", where),
        syntax=_syntax(raw, where),
        no_transaction_markers=_markers(raw, where),
        dotted_versions=bool(raw.get("dotted_versions", False)),
    )


def load_config(path: Path | None = None) -> MigrationConfig:
    """Read the environments file: `path`, $COSTUDY_MIGRATIONS_CONFIG or sql/environments.toml."""
    path = Path(path or os.environ.get(CONFIG_VAR) or DEFAULT_CONFIG).resolve()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no migration configuration at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    _unknown_keys(raw, _TOP_KEYS, str(path))
    timeouts = _timeouts(raw, Timeouts(), str(path))
    databases = tuple(
        _database(name, table, path.parent, str(path), timeouts)
        for name, table in raw.get("databases", {}).items()
    )
    backup_dir = raw.get("backup_dir")
    return MigrationConfig(
        path=path,
        databases=databases,
        lock_timeout_s=float(raw.get("lock_timeout_seconds", DEFAULT_LOCK_TIMEOUT_S)),
        backup_dir=(path.parent / backup_dir).resolve()
        if backup_dir
        else costudy_home() / "backups",
    )
