"""Resolve every database variable to a URL, starting the embedded server for the unset ones.

The CLI calls `prepare_environment()` before it hands over to Dagster, so that Dagster's
`EnvVar`s, `dagster.yaml` and the webserver all read the same, already-resolved variables.
`costudy db up`, `demo` and `ui` also write what was resolved into a block of the env file
(`.env`, see `record_for_dagster`), which Dagster's own commands (`dagster ...`, `dg ...`, run
from the project folder) load: they find the same instance and databases without `costudy`
wrapping them. `costudy` itself never reads that block back as settings: each command
resolves afresh (another port, a server stopped).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

from dotenv import load_dotenv

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.embedded_pg import EmbeddedPostgres
from costudy_pipelines.lib.settings import (
    DATABASES,
    PROJECT_ROOT,
    costudy_home,
    embedded_port,
    env_block_removed,
    env_file,
    remove_env_block,
    unset_databases,
    write_env_block,
)

ENV_BLOCK_START = "# >>> costudy db (written by `costudy db up`, `demo`, `ui`; do not edit inside)"
ENV_BLOCK_END = "# <<< costudy db"
# What Dagster's commands need beyond the variables the user set: where dagster.yaml is, where
# its artifacts and compute logs go.
DAGSTER_VARS = ("DAGSTER_HOME", "COSTUDY_ARTIFACTS")


@dataclass(frozen=True)
class ResolvedDatabase:
    env_var: str
    url: str
    embedded: bool

    @property
    def masked(self) -> str:
        return pg.mask(self.url)


def embedded_server() -> EmbeddedPostgres:
    return EmbeddedPostgres(costudy_home() / "pgdata", embedded_port())


def load_dotenv_file() -> None:
    """Read `.env` (never overriding variables the shell already set), except the block
    prepare_environment wrote."""
    path = env_file()
    if path.exists():
        lines = env_block_removed(path.read_text().splitlines(), ENV_BLOCK_START, ENV_BLOCK_END)
        load_dotenv(stream=io.StringIO("\n".join(lines)), override=False)


def prepare_environment() -> list[ResolvedDatabase]:
    """Fill every database variable; start the embedded server only if some are unset."""
    load_dotenv_file()
    missing = unset_databases()
    if missing:
        server = embedded_server()
        server.start()
        server.ensure_databases([spec.embedded_name for spec in missing])
        for spec in missing:
            os.environ[spec.env_var] = server.server_url(spec.embedded_name)
    missing_vars = {spec.env_var for spec in missing}
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT))
    os.environ.setdefault("COSTUDY_ARTIFACTS", str(costudy_home() / "dagster"))
    return [
        ResolvedDatabase(spec.env_var, os.environ[spec.env_var], spec.env_var in missing_vars)
        for spec in DATABASES
    ]


def record_for_dagster(resolved: list[ResolvedDatabase]) -> None:
    """Write the embedded databases' URLs, DAGSTER_HOME and COSTUDY_ARTIFACTS into the env
    file's block, for Dagster's commands run without `costudy` (variables the user set
    are already in the env file or the shell, and stay there)."""
    values = {database.env_var: database.url for database in resolved if database.embedded}
    values |= {var: os.environ[var] for var in DAGSTER_VARS}
    write_env_block(ENV_BLOCK_START, ENV_BLOCK_END, values)


def forget_for_dagster() -> None:
    """Remove that block: once the embedded server stops, its URLs name nothing, and Dagster's
    commands (which load .env over the shell) would wait on them (`dg check defs` in `make
    lint` did, whatever DAGSTER_HOME the shell gave)."""
    remove_env_block(ENV_BLOCK_START, ENV_BLOCK_END)
