"""Dagster on the project's PostgreSQL: definitions load, the demo runs, the UI answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines_tests.harness import DatabaseFactory, free_port, project_environment

BIN = Path(sys.executable).parent


@pytest.fixture
def project_env(databases: DatabaseFactory, tmp_path: Path) -> dict[str, str]:
    return project_environment(databases, tmp_path / "home")


def test_definitions_validate(project_env: dict[str, str]) -> None:
    result = subprocess.run(
        [
            str(BIN / "dagster"),
            "definitions",
            "validate",
            "-w",
            str(PROJECT_ROOT / "workspace.yaml"),
        ],
        cwd=project_env["COSTUDY_HOME"],  # Dagster's CLI loads ./.env over the environment
        env={**project_env, "DAGSTER_HOME": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


@pytest.mark.slow
def test_demo_records_its_run_in_the_postgres_instance(project_env: dict[str, str]) -> None:
    try:
        result = subprocess.run(
            [str(BIN / "costudy"), "demo"],
            cwd=PROJECT_ROOT,
            env=project_env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:  # the demo leaves the sandbox servers running for the UI: stop them
        subprocess.run(
            [str(BIN / "costudy"), "sandbox", "down"],
            cwd=PROJECT_ROOT,
            env=project_env,
            capture_output=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert ": SUCCESS in" in result.stdout
    assert "database_inventory" in result.stdout

    with psycopg.connect(project_env["DAGSTER_PG_URL"]) as conn:
        runs = conn.execute("select pipeline_name, status from runs").fetchall()
    assert runs == [("main", "SUCCESS")]


@pytest.mark.slow
def test_ui_starts_on_postgres_and_serves_the_assets(project_env: dict[str, str]) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "costudy"), "ui", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=project_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 150
        asset_keys: list[str] = []
        while time.monotonic() < deadline and not asset_keys:
            assert process.poll() is None, "costudy ui exited early"
            try:
                answer = httpx.post(
                    f"{base}/graphql",
                    json={"query": "{ assetNodes { assetKey { path } } }"},
                    timeout=5,
                )
                nodes = answer.json()["data"]["assetNodes"]
                asset_keys = ["/".join(node["assetKey"]["path"]) for node in nodes]
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                time.sleep(1)
        assert "database_inventory" in asset_keys
        assert httpx.get(f"{base}/server_info", timeout=5).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
