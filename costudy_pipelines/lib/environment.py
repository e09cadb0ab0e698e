"""Resolve every database variable to a URL, starting the embedded server for the unset ones.

The CLI calls `prepare_environment()` before it hands over to Dagster, so that Dagster's
`EnvVar`s, `dagster.yaml` and the webserver all read the same, already-resolved variables.
"""

from __future__ import annotations

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
    env_file,
    unset_databases,
)


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
    """Read `.env` (never overriding variables the shell already set)."""
    load_dotenv(env_file(), override=False)


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
