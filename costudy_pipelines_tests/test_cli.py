"""`costudy` starts fast and asking for help does nothing else: the root help imports no
database, network or Dagster library, and `--help` after any command runs no group callback
(`costudy migrate apply --help` once started the embedded PostgreSQL before printing)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from costudy_pipelines.cli import LAZY_COMMANDS, load_command, main
from costudy_pipelines.lib.settings import DATABASES, PROJECT_ROOT
from costudy_pipelines_tests.harness import free_port

COSTUDY = Path(sys.executable).parent / "costudy"
HEAVY = ("psycopg", "sqlalchemy", "httpx", "duckdb", "dagster", "pandas", "pgserver", "psutil")


def imported_modules(stderr: str) -> set[str]:
    """Module names from `-X importtime` output (`import time: self | cumulative | name`)."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def quiet_environment(tmp_path: Path) -> dict[str, str]:
    """An environment in which any side effect would show: state under tmp_path, a free port
    for the embedded server, no database variable set."""
    env = {k: v for k, v in os.environ.items() if k not in {d.env_var for d in DATABASES}}
    env.pop("DAGSTER_HOME", None)
    env.update(
        COSTUDY_HOME=str(tmp_path / "home"),
        COSTUDY_ENV_FILE=str(tmp_path / "dotenv"),
        COSTUDY_PG_PORT=str(free_port()),
    )
    return env


def test_root_help_imports_no_heavy_library(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(COSTUDY), "--help"],
        env={**quiet_environment(tmp_path), "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    modules = imported_modules(result.stderr)
    assert "click" in modules  # the profile was read: an empty set would pass vacuously
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == []
    for name in [*LAZY_COMMANDS, "db", "demo", "ui"]:
        assert f"  {name} " in result.stdout


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_root_help_lines_are_the_commands_own(name: str) -> None:
    """The help `costudy --help` shows without importing a command is the command's own."""
    command = load_command(name)
    assert command.help is not None
    assert " ".join(command.help.split()) == LAZY_COMMANDS[name][2]


def test_migrate_apply_help_starts_no_server(tmp_path: Path) -> None:
    env = quiet_environment(tmp_path)
    result = subprocess.run(
        [str(COSTUDY), "migrate", "apply", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: costudy migrate apply")
    assert list(tmp_path.iterdir()) == []  # no data folder, no .env written
    with socket.socket() as probe:  # nothing listens on the embedded server's port
        assert probe.connect_ex(("127.0.0.1", int(env["COSTUDY_PG_PORT"]))) != 0


def command_paths(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = load_command(name) if not path and name in LAZY_COMMANDS else None
            sub = sub or command.get_command(ctx, name)
            assert sub is not None
            paths += command_paths(sub, (*path, name))
    return paths


def test_every_commands_help_has_no_side_effect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = quiet_environment(tmp_path)
    for key in [d.env_var for d in DATABASES] + ["DAGSTER_HOME"]:
        monkeypatch.delenv(key, raising=False)
    for key in ("COSTUDY_HOME", "COSTUDY_ENV_FILE", "COSTUDY_PG_PORT"):
        monkeypatch.setenv(key, env[key])
    before = dict(os.environ)
    paths = command_paths(main)
    assert ("migrate", "apply") in paths and ("reverse-sync", "dead-letters", "replay") in paths
    for path in paths:
        result = CliRunner().invoke(
            main, [*path, "--help"], prog_name="costudy", catch_exceptions=False
        )
        assert result.exit_code == 0, (path, result.output)
        assert result.output.startswith(f"Usage: {' '.join(('costudy', *path))}"), path
        assert list(tmp_path.iterdir()) == [], path
        assert dict(os.environ) == before, path


def test_make_ui_takes_a_port() -> None:
    done = subprocess.run(
        ["make", "-n", "ui", "PORT=3123"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "/costudy ui --port 3123" in done.stdout
    refused = CliRunner().invoke(main, ["ui", "--port", "70000"], prog_name="costudy")
    assert refused.exit_code == 2 and "70000" in refused.output
