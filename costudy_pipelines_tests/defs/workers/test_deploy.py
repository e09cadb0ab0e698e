"""deploy/: no Docker engine here, so what can be checked without one: the compose file's
structure, that every variable it or its env file names is documented and none holds a
value, that the Dagster processes share one image and one environment, and that the commands
and files it names exist."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import yaml

from costudy_pipelines.lib.settings import DATABASES, PROJECT_ROOT
from costudy_pipelines_tests.defs.workers.support import BIN

DEPLOY = PROJECT_ROOT / "deploy"
DAGSTER_SERVICES = ("webserver", "daemon", "worker")
INTERPOLATED = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def env_example() -> dict[str, str]:
    lines = (DEPLOY / "env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def documented(name: str) -> bool:
    return f"`{name}`" in (DEPLOY / "README.md").read_text()


def test_the_platform_is_webserver_daemon_workers_and_their_servers() -> None:
    services = compose()["services"]
    assert set(services) == {*DAGSTER_SERVICES, "postgres", "rabbitmq", "redis"}
    images = {services[name]["image"] for name in DAGSTER_SERVICES}
    assert len(images) == 1, "one image: the same code in every Dagster process"
    environments = [services[name]["environment"] for name in DAGSTER_SERVICES]
    assert all(env == environments[0] for env in environments)
    shared = environments[0]
    assert shared["COSTUDY_EXECUTOR"] == "celery"
    assert {"DAGSTER_PG_URL", "CELERY_BROKER_URL", "CELERY_BACKEND_URL"} <= set(shared)
    assert services["worker"]["command"][:2] == ["costudy", "worker"]
    assert "replicas" in services["worker"]["deploy"]
    for server in ("postgres", "rabbitmq", "redis"):
        assert services["worker"]["depends_on"][server] == {"condition": "service_healthy"}


def test_every_variable_is_documented_and_none_has_a_value_committed() -> None:
    named = set(INTERPOLATED.findall((DEPLOY / "compose.yaml").read_text()))
    example = env_example()
    shared = compose()["services"]["worker"]["environment"]
    assert named - set(example) == set(), "every ${VAR} of compose.yaml is in env.example"
    undocumented = sorted(n for n in {*named, *example, *shared} if not documented(n))
    assert undocumented == []
    assert {name: value for name, value in example.items() if value} == {}
    databases = {spec.env_var for spec in DATABASES}
    assert databases - set(example) - set(shared) == set(), "every database is set"


def test_the_commands_and_files_it_names_exist() -> None:
    for program in ("dagster-webserver", "dagster-daemon"):
        assert (BIN / program).exists(), program
    help_text = subprocess.run(
        [str(BIN / "costudy"), "worker", "--help"], capture_output=True, text=True, timeout=60
    )
    assert help_text.returncode == 0 and "--concurrency" in help_text.stdout
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:  # not from an earlier stage
            for source in line.split()[1:-1]:
                assert (PROJECT_ROOT / source).exists(), f"Dockerfile copies missing {source}"
