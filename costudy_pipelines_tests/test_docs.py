"""README and .env.example name every variable the code reads from the environment."""

from __future__ import annotations

import re

from costudy_pipelines.lib.settings import DATABASES, PROJECT_ROOT
from costudy_pipelines.sources.registry import load_registry

ENV_READ = re.compile(
    r"""EnvVar\(\s*["']([A-Z][A-Z0-9_]+)["']|environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]+)"""
)


def variables_read_by_the_code() -> set[str]:
    """What the code names literally, and what each API source's spec.py declares."""
    names = {spec.env_var for spec in DATABASES}
    for source in load_registry():
        if source.source.api is not None:
            names.update(source.source.api.environment.values())
    for path in (PROJECT_ROOT / "costudy_pipelines").rglob("*.py"):
        for match in ENV_READ.finditer(path.read_text()):
            names.add(match.group(1) or match.group(2))
    return names


def test_readme_documents_every_variable() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme[readme.index("## Environment variables") :]
    read = variables_read_by_the_code()
    assert {"WHOP_API_KEY", "GHL_TOKEN"} <= read, "the scan must see the API sources' variables"
    assert "ELECTIVE_DROP_DIR" in read, "the scan must see the resources' EnvVars"
    assert sorted(name for name in read if f"`{name}`" not in table) == []


def test_env_example_has_names_only_for_every_secret() -> None:
    example = (PROJECT_ROOT / ".env.example").read_text()
    assigned = dict(
        line.split("=", 1) for line in example.splitlines() if "=" in line and line[0] != "#"
    )
    secrets = [name for name in assigned if name.endswith(("_KEY", "_TOKEN", "_SECRET"))]
    assert secrets, ".env.example must list the secret names"
    assert {name: assigned[name] for name in secrets if assigned[name]} == {}
