"""Dagster on the project's PostgreSQL: definitions load, the demo runs, the UI answers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines_tests.harness import HANG_S, DatabaseFactory, free_port, project_environment

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
        timeout=HANG_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def run_while_progressing(
    command: list[str], env: dict[str, str], log: Path, stalled_s: float = 600
) -> tuple[int, str]:
    """Run `command` to its end, however long a busy machine makes it, as long as its output
    keeps growing; fail if it prints nothing new for `stalled_s` (a hang, not a slow CPU)."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
        size, progressed = 0, time.monotonic()
        while process.poll() is None:
            time.sleep(1)
            if log.stat().st_size != size:
                size, progressed = log.stat().st_size, time.monotonic()
            elif time.monotonic() - progressed > stalled_s:
                process.kill()
                raise AssertionError(f"no output for {stalled_s:.0f} s:\n{log.read_text()[-3000:]}")
    return process.returncode, log.read_text(errors="replace")


@pytest.mark.slow
@pytest.mark.timeout(0)  # bounded by its progress (run_while_progressing), not by the clock
def test_demo_records_its_run_in_the_postgres_instance(
    project_env: dict[str, str], tmp_path: Path
) -> None:
    try:
        returncode, output = run_while_progressing(
            [str(BIN / "costudy"), "demo"], project_env, tmp_path / "demo.log"
        )
    finally:  # the demo leaves the sandbox servers running for the UI: stop them
        subprocess.run(
            [str(BIN / "costudy"), "sandbox", "down"],
            cwd=PROJECT_ROOT,
            env=project_env,
            capture_output=True,
            timeout=60,
        )
    assert returncode == 0, output[-6000:]
    assert ": SUCCESS in" in output
    assert "database_inventory" in output

    with psycopg.connect(project_env["DAGSTER_PG_URL"]) as conn:
        runs = conn.execute("select pipeline_name, status from runs").fetchall()
    assert runs == [("main", "SUCCESS")]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_ui_starts_on_postgres_and_serves_the_assets(project_env: dict[str, str]) -> None:
    port, charts = free_port(), free_port()
    process = subprocess.Popen(
        [str(BIN / "costudy"), "ui", "--port", str(port), "--charts-port", str(charts)],
        cwd=PROJECT_ROOT,
        env=project_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        # While the process lives it is starting (a loaded 2-core machine takes minutes to
        # import and load the code location); it exiting fails the test at once.
        deadline = time.monotonic() + 600
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
        # the chart server beside it answers (a chart never written: a 404 of its own)
        missing = httpx.get(f"http://127.0.0.1:{charts}/charts/never_drawn.svg", timeout=5)
        assert missing.status_code == 404 and b"no such chart" in missing.content
        # and it stops with dg (the process costudy ui became), not left behind
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and port_open(charts):
            time.sleep(0.5)
        assert not port_open(charts), "the chart server outlived costudy ui"
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
