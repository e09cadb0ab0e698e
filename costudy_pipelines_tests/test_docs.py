"""README and .env.example name every variable the code reads from the environment."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from costudy_pipelines.cli import main as costudy
from costudy_pipelines.lib.settings import DATABASES, PROJECT_ROOT
from costudy_pipelines.sources.registry import load_registry

ENV_READ = re.compile(
    r"""EnvVar\(\s*["']([A-Z][A-Z0-9_]+)["']|environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]+)"""
)


def declared_by_sources() -> set[str]:
    """What each registered API source's spec.py declares (Api.environment)."""
    return {
        variable
        for source in load_registry()
        if source.source.api is not None
        for variable in source.source.api.environment.values()
    }


def variables_read_by_the_code() -> set[str]:
    """What the code names literally (a source's variables are declared, not named: see
    `costudy sources env`)."""
    names = {spec.env_var for spec in DATABASES}
    for path in (PROJECT_ROOT / "costudy_pipelines").rglob("*.py"):
        for match in ENV_READ.finditer(path.read_text()):
            names.add(match.group(1) or match.group(2))
    return names


def test_readme_documents_every_variable() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme[readme.index("## Environment variables") :]
    read = variables_read_by_the_code()
    assert "ELECTIVE_DROP_DIR" in read, "the scan must see the resources' EnvVars"
    assert sorted(name for name in read if f"`{name}`" not in table) == []
    # a source's own variables: `costudy sources env` lists them, README says so
    assert "`costudy sources env`" in table


def test_costudy_sources_env_lists_every_declared_variable_and_no_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WHOP_API_KEY", "a-secret-never-printed")
    monkeypatch.delenv("GHL_TOKEN", raising=False)
    result = CliRunner().invoke(costudy, ["sources", "env"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[2]: line.split()[3] for line in result.output.splitlines()}
    assert set(rows) == declared_by_sources() >= {"WHOP_API_KEY", "GHL_TOKEN"}
    assert (rows["WHOP_API_KEY"], rows["GHL_TOKEN"]) == ("set", "unset")
    assert "a-secret-never-printed" not in result.output


def test_env_example_has_names_only_for_every_secret() -> None:
    example = (PROJECT_ROOT / ".env.example").read_text()
    assigned = dict(
        line.split("=", 1) for line in example.splitlines() if "=" in line and line[0] != "#"
    )
    secrets = [name for name in assigned if name.endswith(("_KEY", "_TOKEN", "_SECRET"))]
    assert secrets, ".env.example must list the secret names"
    assert {name: assigned[name] for name in secrets if assigned[name]} == {}
