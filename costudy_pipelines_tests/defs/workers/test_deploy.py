"""deploy/: no Docker engine here, so what can be checked without one: the compose file's
structure, that every variable it or its env file names is documented and none holds a
value, that the Dagster processes share one image and one environment, and that the commands
and files it names exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from costudy_pipelines.lib.settings import DATABASES, PROJECT_ROOT
from costudy_pipelines_tests.defs.workers.support import BIN, PREPARE_STORAGE
from costudy_pipelines_tests.harness import HANG_S

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
    assert set(services) == {*DAGSTER_SERVICES, "storage", "postgres", "rabbitmq", "redis"}
    images = {services[name]["image"] for name in DAGSTER_SERVICES}
    assert len(images) == 1, "one image: the same code in every Dagster process"
    for name in DAGSTER_SERVICES:  # one instance, one broker, one executor everywhere
        assert compose()["x-shared-environment"].items() <= services[name]["environment"].items()
    shared = services["webserver"]["environment"]
    assert shared["COSTUDY_EXECUTOR"] == "celery"
    assert {"DAGSTER_PG_URL", "CELERY_BROKER_URL", "CELERY_BACKEND_URL"} <= set(shared)
    assert services["worker"]["command"][:2] == ["costudy", "worker"]
    assert "replicas" in services["worker"]["deploy"]
    for server in ("postgres", "rabbitmq", "redis"):
        assert services["worker"]["depends_on"][server] == {"condition": "service_healthy"}


def test_storage_is_prepared_once_before_the_processes_that_share_it() -> None:
    """webserver, daemon and workers once started together on an empty storage database; one
    of them could fail creating a table the others were creating (the tests' clusters hit it)."""
    services = compose()["services"]
    storage = services["storage"]
    assert tuple(storage["command"]) == PREPARE_STORAGE  # what the tests' clusters run first
    assert storage["restart"] == "no"
    assert storage["image"] == services["webserver"]["image"]
    assert storage["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in DAGSTER_SERVICES:
        assert services[name]["depends_on"]["storage"] == {
            "condition": "service_completed_successfully"
        }, name
    # the instance's settings only: no source's credentials, no server's password
    assert storage["environment"] == compose()["x-shared-environment"]


SERVER_PASSWORDS = {"POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "REDIS_PASSWORD"}
# read only by steps (workers), or by no Dagster process at all (the webhook receiver's secret)
STEP_ONLY = {"PLATFORM_TOKEN_KEY", "PLATFORM_API_TOKEN", "REVERSE_SYNC_STRATEGIES"}


def test_each_service_gets_only_the_variables_it_needs() -> None:
    """compose.yaml once gave every Dagster container the whole deploy/.env (env_file), the
    servers' passwords included."""
    services = compose()["services"]
    assert "env_file" not in compose()["x-costudy"]
    for name in DAGSTER_SERVICES:
        assert "env_file" not in services[name]
        assert SERVER_PASSWORDS.isdisjoint(services[name]["environment"]), name
        assert "WEBSITE_WEBHOOK_SECRET" not in services[name]["environment"]
    for name in ("webserver", "daemon"):
        assert STEP_ONLY.isdisjoint(services[name]["environment"]), name
    assert "ALERT_WEBHOOK_URL" not in services["webserver"]["environment"]
    assert set(services["worker"]["environment"]) >= STEP_ONLY
    for server, password in (("postgres", "POSTGRES_PASSWORD"), ("redis", "REDIS_PASSWORD")):
        assert password in services[server]["environment"]


def test_the_daemon_keeps_its_identity_and_every_service_has_a_health_check() -> None:
    services = compose()["services"]
    # run monitoring matches a run's costudy/run_host tag against the daemon's hostname: a
    # recreated container with a new one would orphan every run it had launched
    assert services["daemon"]["hostname"] == "costudy-daemon"
    for name, service in services.items():
        if service.get("restart") != "no":  # a one-shot service ends; nothing to probe
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
    assert services["daemon"]["healthcheck"]["test"] == [
        "CMD",
        "dagster-daemon",
        "liveness-check",
    ]
    worker = services["worker"]
    name = worker["command"][worker["command"].index("--name") + 1]
    assert f'--destination "{name}@$$HOSTNAME"' in worker["healthcheck"]["test"][1]
    assert "/server_info" in " ".join(services["webserver"]["healthcheck"]["test"])


def rendered(environment: dict[str, str]) -> dict[str, str]:
    """A service's environment as compose renders it: defaults taken, required ones filled."""
    value = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*)|:\?[^}]*)?\}")
    return {
        key: value.sub(lambda m: m.group(2) if m.group(2) is not None else "x", str(raw))
        for key, raw in environment.items()
    }


# What the webserver's code server does to launch a run: load the definitions and build each
# job's plan, resolving every resource's EnvVar (a variable missing fails the launch).
RESOLVE_EVERY_JOB = """
import re
import dagster as dg
from costudy_pipelines.definitions import project_definitions
defs = project_definitions()
defs.validate_loadable(defs)
for job in defs.resolve_all_job_defs():
    dg.validate_run_config(job, {})
print("resolved", len(list(defs.resolve_all_job_defs())))
"""


@pytest.mark.parametrize("service", DAGSTER_SERVICES)
def test_each_dagster_service_has_every_variable_a_runs_plan_resolves(service: str) -> None:
    env = rendered(compose()["services"][service]["environment"])
    env |= {"PATH": os.environ["PATH"], "DAGSTER_HOME": str(PROJECT_ROOT)}
    env |= {"COSTUDY_ENV_FILE": os.devnull}  # no .env of the checkout behind its back
    loaded = subprocess.run(
        [sys.executable, "-c", RESOLVE_EVERY_JOB],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "resolved" in loaded.stdout


def test_every_variable_is_documented_and_none_has_a_value_committed() -> None:
    named = set(INTERPOLATED.findall((DEPLOY / "compose.yaml").read_text()))
    example = env_example()
    shared = compose()["services"]["worker"]["environment"]  # every variable a step may read
    assert named - set(example) == set(), "every ${VAR} of compose.yaml is in env.example"
    undocumented = sorted(n for n in {*named, *example, *shared} if not documented(n))
    assert undocumented == []
    assert {name: value for name, value in example.items() if value} == {}
    databases = {spec.env_var for spec in DATABASES}
    assert databases - set(example) - set(shared) == set(), "every database is set"


def test_the_commands_and_files_it_names_exist() -> None:
    for program in ("dagster-webserver", "dagster-daemon", PREPARE_STORAGE[0]):
        assert (BIN / program).exists(), program
    help_text = subprocess.run(
        [str(BIN / "costudy"), "worker", "--help"], capture_output=True, text=True, timeout=60
    )
    assert help_text.returncode == 0 and "--concurrency" in help_text.stdout
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:  # not from an earlier stage
            for source in line.split()[1:-1]:
                assert (PROJECT_ROOT / source).exists(), f"Dockerfile copies missing {source}"
