"""Which databases have migrations, and the environments each is promoted through.

`sql/environments.toml` (or the file COSTUDY_MIGRATIONS_CONFIG names):

    lock_timeout_seconds = 30            # optional
    backup_dir = "/var/backups/costudy"  # optional; default $COSTUDY_HOME/backups

    [databases.platform]                 # migrations in sql/platform/ (or `folder = "..."`)
    environments = [                     # promotion order: first is applied first
        { name = "dev", url_env = "PLATFORM_DB_URL" },
        { name = "prod", url_env = "PLATFORM_PROD_DB_URL", production = true },
    ]

`production = true` turns on the production-only steps: a pg_dump backup before anything is
applied, and the refusal of destructive statements without `-- costudy:allow-destructive`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from costudy_pipelines.lib.migrations.errors import ConfigError
from costudy_pipelines.lib.migrations.target import Target
from costudy_pipelines.lib.settings import PROJECT_ROOT, costudy_home

CONFIG_VAR = "COSTUDY_MIGRATIONS_CONFIG"
DEFAULT_CONFIG = PROJECT_ROOT / "sql" / "environments.toml"
DEFAULT_LOCK_TIMEOUT_S = 30.0
_TOP_KEYS = {"lock_timeout_seconds", "backup_dir", "databases"}
_DATABASE_KEYS = {"folder", "environments"}
_ENVIRONMENT_KEYS = {"name", "url_env", "production"}


@dataclass(frozen=True)
class Environment:
    name: str
    url_env: str
    production: bool = False

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

    def target(self, environment: Environment | str) -> Target:
        env = self.environment(environment) if isinstance(environment, str) else environment
        return Target(self.name, env.name, env.url(), env.url_env, env.production)


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
    return Environment(str(raw["name"]), str(raw["url_env"]), bool(raw.get("production", False)))


def _database(name: str, raw: object, base: Path, where: str) -> DatabaseMigrations:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [databases.{name}] must be a table")
    _unknown_keys(raw, _DATABASE_KEYS, f"{where} [databases.{name}]")
    environments = tuple(
        _environment(item, f"{where} [databases.{name}]") for item in raw.get("environments", [])
    )
    if not environments:
        raise ConfigError(f"{where}: [databases.{name}] lists no environments")
    names = [environment.name for environment in environments]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: [databases.{name}] names an environment twice: {names}")
    return DatabaseMigrations(name, (base / str(raw.get("folder", name))).resolve(), environments)


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
    databases = tuple(
        _database(name, table, path.parent, str(path))
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
