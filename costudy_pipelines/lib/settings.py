"""Where the project keeps its local state, and which database each environment variable names.

Every connection comes from the environment. When a database variable is unset, the embedded
PostgreSQL (see ``embedded_pg``) serves that database instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]
_CHECKOUT = _PACKAGE.parent
SHIPPED = _PACKAGE / "shipped"  # the wheel's copy of sql/, sources.toml, dagster.yaml


def _is_checkout(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "sql").is_dir()


# Where sql/, sources.toml and dagster.yaml are: the checkout (an editable install, the tests),
# else the package's own shipped/ folder (a wheel installed into site-packages: the image).
INSTALLED = not _is_checkout(_CHECKOUT)
PROJECT_ROOT = SHIPPED if INSTALLED else _CHECKOUT


def state_root() -> Path:
    """Under which the defaults for local state live (.costudy, .env): the checkout, or, for an
    installed package (site-packages is no place for state), the current directory."""
    return Path.cwd() if INSTALLED else _CHECKOUT


HOME_VAR = "COSTUDY_HOME"
ENV_FILE_VAR = "COSTUDY_ENV_FILE"
EMBEDDED_PORT_VAR = "COSTUDY_PG_PORT"
DEFAULT_EMBEDDED_PORT = 54329


@dataclass(frozen=True)
class DatabaseSpec:
    """One logical database: the variable that names it, and its name on the embedded server."""

    env_var: str
    embedded_name: str
    purpose: str


# One server, separate databases: Dagster's own storage never shares the warehouse database.
DATABASES: tuple[DatabaseSpec, ...] = (
    DatabaseSpec("DAGSTER_PG_URL", "dagster", "Dagster instance storage (runs, events, schedules)"),
    DatabaseSpec("WAREHOUSE_DB_URL", "warehouse", "the unified warehouse (dev)"),
    DatabaseSpec("WAREHOUSE_PROD_DB_URL", "warehouse_prod", "the unified warehouse (prod)"),
    DatabaseSpec("WEBSITE_DB_URL", "website", "the marketing website database"),
    DatabaseSpec("PLATFORM_DB_URL", "platform", "the product platform database (dev)"),
    DatabaseSpec("PLATFORM_PROD_DB_URL", "platform_prod", "the product platform database (prod)"),
    DatabaseSpec("COURSE_DB_URL", "course", "the course platform core database"),
)


def costudy_home() -> Path:
    """The folder for local state: embedded data directory, sandbox files, Dagster artifacts."""
    return Path(os.environ.get(HOME_VAR) or state_root() / ".costudy").resolve()


def embedded_port() -> int:
    raw = os.environ.get(EMBEDDED_PORT_VAR) or str(DEFAULT_EMBEDDED_PORT)
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{EMBEDDED_PORT_VAR}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{EMBEDDED_PORT_VAR}={port} is outside 1..65535")
    return port


def positive_int_setting(name: str) -> int | None:
    """A whole number >= 1 from variable `name`; None when unset. Bad values name the variable."""
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"{name}={value} must be at least 1")
    return value


def unset_databases() -> list[DatabaseSpec]:
    """The databases no environment variable names: the embedded server must serve these."""
    return [spec for spec in DATABASES if not os.environ.get(spec.env_var)]


def env_file() -> Path:
    """The dotenv file read at start (and where `costudy sandbox up` writes its block)."""
    return Path(os.environ.get(ENV_FILE_VAR) or state_root() / ".env")


def env_block_removed(lines: list[str], start: str, end: str) -> list[str]:
    """`lines` of an env file without the block between the markers `start` and `end`."""
    if start not in lines:
        return lines
    first = lines.index(start)
    last = lines.index(end, first) if end in lines[first:] else first
    return lines[:first] + lines[last + 1 :]


def remove_env_block(start: str, end: str) -> None:
    """Remove one command's block of the env file, keeping every other line."""
    path = env_file()
    if path.exists():
        lines = path.read_text().splitlines()
        kept = env_block_removed(lines, start, end)
        if kept != lines:
            path.write_text("".join(f"{line}\n" for line in kept))


def write_env_block(start: str, end: str, values: dict[str, str]) -> Path:
    """Replace one command's block of the env file (`start` .. `end`), keeping every line
    the user wrote and every other block."""
    path = env_file()
    lines = path.read_text().splitlines() if path.exists() else []
    block = [start, *(f"{key}={value}" for key, value in values.items()), end]
    path.write_text("\n".join([*env_block_removed(lines, start, end), *block]) + "\n")
    path.chmod(0o600)
    return path
