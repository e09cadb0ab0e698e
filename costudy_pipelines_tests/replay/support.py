"""What the replay tests share: the command line on test databases, and the output metadata
of a job's op."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from click.testing import CliRunner, Result

from costudy_pipelines.cli import main
from costudy_pipelines.lib.settings import DATABASES


def use_databases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **urls: str) -> None:
    """Every database variable set (so no embedded server starts), no .env read."""
    monkeypatch.setenv("COSTUDY_ENV_FILE", str(tmp_path / "no.env"))
    fallback = next(iter(urls.values()))
    for spec in DATABASES:
        monkeypatch.setenv(spec.env_var, urls.get(spec.env_var, fallback))


def costudy(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def op_metadata(result: dg.ExecuteInProcessResult, op: str) -> dict[str, Any]:
    """The metadata of the op's output, as the run's page shows it (plain values)."""
    [event] = [e for e in result.events_for_node(op) if e.event_type_value == "STEP_OUTPUT"]
    metadata = event.step_output_data.metadata
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def replay_job(
    name: str, resources: dict[str, Any], strategies: dict[str, Any] | None = None
) -> dg.JobDefinition:
    """A job of defs/replay.py bound to these resources, as the code location binds them
    (a database the job does not use gets the first one's URL: only the keys must exist)."""
    from costudy_pipelines.defs.replay import build_replay_defs
    from costudy_pipelines.defs.resources import PostgresResource

    first = next(r for r in resources.values() if isinstance(r, PostgresResource))
    for key in ("warehouse_db", "website_db", "platform_db"):
        resources.setdefault(key, first)
    defs = dg.Definitions.merge(
        build_replay_defs(strategies or {}), dg.Definitions(resources=resources)
    )
    return defs.resolve_job_def(name)
