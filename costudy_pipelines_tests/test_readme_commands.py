"""README's commands, as written, from a fresh setup: `costudy db up` (which records the
databases and DAGSTER_HOME in .env), `costudy migrate apply`, `costudy sandbox up`, then the
plain `dagster asset materialize` of README with no variable of its own, `costudy db status`,
`dg list defs`, `costudy sandbox down` and `costudy db down`, then `make lint`'s `dg check
defs`. (`costudy demo` and `costudy ui`
are run by test_dagster_instance.py; the migrate and sandbox subcommands by their own tests.)"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest

from costudy_pipelines.lib.environment import ENV_BLOCK_START
from costudy_pipelines.lib.settings import DATABASES, PROJECT_ROOT
from costudy_pipelines_tests.harness import HANG_S, free_port, server_folder

BIN = Path(sys.executable).parent
# What a fresh shell does not have: any database, Dagster or costudy variable.
LOCAL_STATE = {"storage", "logs", "history", "schedules"}  # Dagster's, when DAGSTER_HOME was here
SANDBOX_DOWN, DB_DOWN = ["sandbox", "down"], ["db", "down"]
UNSET = {spec.env_var for spec in DATABASES} | {"COSTUDY_ARTIFACTS", "COSTUDY_SOURCES_CONFIG"}


def readme_backfill() -> list[str]:
    """README's CLI backfill command, exactly as written (continuation lines joined)."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(\.venv/bin/dagster asset materialize[^`]*)```", readme)
    assert block, "README lost its command-line backfill"
    return shlex.split(block.group(1).replace("\\\n", " "))


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=HANG_S)


@pytest.mark.slow
def test_readme_cli_backfill_runs_as_written_after_db_up(tmp_path: Path) -> None:
    with server_folder() as home:  # the embedded server's data outside pytest's tmp tree
        readme_backfill_in(tmp_path, home)


def readme_backfill_in(tmp_path: Path, home: Path) -> None:
    # A "fresh clone": the project's files (links), its .venv, no .env, no .costudy. The
    # commands run there (Dagster and dg load ./.env); costudy writes that .env.
    folder = tmp_path / "project"
    folder.mkdir()
    for entry in PROJECT_ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name not in LOCAL_STATE:
            (folder / entry.name).symlink_to(entry)
    (folder / ".venv").symlink_to(BIN.parent)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in UNSET and not key.startswith("DAGSTER_")
    }
    env |= {
        "COSTUDY_HOME": str(home),
        "COSTUDY_PG_PORT": str(free_port()),
        "COSTUDY_ENV_FILE": str(folder / ".env"),
    }
    costudy = str(BIN / "costudy")
    try:
        backfill = readme_backfill()
        first, last = backfill[backfill.index("--partition-range") + 1].split("...")
        # the world README's dates are for: pinned to start on its first day
        sandbox = ["sandbox", "up", "--days", "3", "--start", first]
        for command in (["db", "up"], ["migrate", "apply"], sandbox):
            done = run([costudy, *command], env, folder)
            assert done.returncode == 0, f"costudy {command}: {done.stdout}{done.stderr}"
        assert ENV_BLOCK_START in (folder / ".env").read_text()

        done = run(backfill, env, folder)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

        recorded = (folder / ".env").read_text()
        urls = dict(re.findall(r"^(\w+_URL)=(postgresql://\S+)$", recorded, re.MULTILINE))
        with psycopg.connect(urls["WAREHOUSE_DB_URL"]) as conn:
            days = conn.execute(
                "select min(partition_key), max(partition_key), count(*) from sync_log"
                " where source = 'whop_payments' and status <> 'FAILED'"
            ).fetchone()
        span = (date.fromisoformat(last) - date.fromisoformat(first)).days + 1
        assert days == (first, last, span)
        # The run is in the project's instance (dagster.yaml's PostgreSQL), not a temporary one.
        with psycopg.connect(urls["DAGSTER_PG_URL"]) as conn:
            runs = conn.execute("select status from runs").fetchall()
        assert runs == [("SUCCESS",)]

        status = run([costudy, "db", "status"], env, folder)
        assert status.returncode == 0 and "embedded PostgreSQL: running" in status.stdout
        listed = run([".venv/bin/dg", "list", "defs"], env, folder)
        assert listed.returncode == 0 and "whop_payments" in listed.stdout, listed.stderr
    finally:
        stopped = [run([costudy, *command], env, folder) for command in (SANDBOX_DOWN, DB_DOWN)]
    assert [done.returncode for done in stopped] == [0, 0], [d.stderr for d in stopped]
    assert "stopped" in stopped[1].stdout
    # .env no longer names the stopped server: Dagster's commands load it over the shell, and
    # `make lint`'s `dg check defs` (its own throwaway DAGSTER_HOME) waited on those URLs
    assert ENV_BLOCK_START not in (folder / ".env").read_text()
    lint_env = env | {"DAGSTER_HOME": str(tmp_path / "lint-home")}
    (tmp_path / "lint-home").mkdir()
    checked = run([".venv/bin/dg", "check", "defs"], lint_env, folder)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
