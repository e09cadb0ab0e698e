"""The package runs as shipped: the wheel, installed (not editable) into a fresh venv outside the
checkout, finds its SQL, views, sources.toml and dagster.yaml in itself, and from a folder
outside the checkout loads and checks the definitions, applies the migrations and runs one
partition. (Installed with `pip install .`, the image once failed to load: `sql/views: no such
folder`, PROJECT_ROOT pointed into site-packages.)"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import psycopg
import pytest

from costudy_pipelines.lib.settings import DATABASES, PROJECT_ROOT, SHIPPED
from costudy_pipelines_tests.harness import HANG_S, DatabaseFactory

BIN = Path(sys.executable).parent
DAY = "2024-01-01"


def run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=HANG_S
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if "__pycache__" not in path.parts}


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_runs_a_partition(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH"} and not key.startswith(("DAGSTER_", "COSTUDY_"))
    }
    # Build the wheel; a venv of its own; the wheel and its dependencies, at the versions the
    # project's venv holds, from uv's cache (what the cache lacks, uv downloads).
    run([BIN / "uv", "build", "--wheel", "--out-dir", tmp_path / "dist"], PROJECT_ROOT, env)
    (wheel,) = (tmp_path / "dist").glob("costudy_pipelines-*.whl")
    pins = run([BIN / "uv", "pip", "freeze", "--python", sys.executable], tmp_path, env)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(
        "\n".join(line for line in pins.splitlines() if "costudy" not in line and "-e " not in line)
    )
    venv = tmp_path / "venv"
    run([BIN / "uv", "venv", "-q", "--python", sys.executable, venv], tmp_path, env)
    python = venv / "bin" / "python"
    install = [BIN / "uv", "pip", "install", "-q", "--python", python]
    run([*install, "-c", constraints, wheel], tmp_path, env)

    # From a folder that is not the checkout, with every database variable set (no embedded
    # server): the state (.env, .costudy) lands there, the package stays as installed.
    outside = tmp_path / "operator"
    outside.mkdir()
    env |= {spec.env_var: databases.create() for spec in DATABASES}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    located = run(
        [
            python,
            "-c",
            "from costudy_pipelines.lib import settings as s; print(s.INSTALLED, s.PROJECT_ROOT)",
        ],
        outside,
        env,
    ).split()
    package_root = Path(located[1])
    assert located[0] == "True" and package_root.is_relative_to(venv), located
    installed_files = files_under(package_root.parent)

    costudy, dagster = venv / "bin" / "costudy", venv / "bin" / "dagster"
    run([dagster, "definitions", "validate", "-m", "costudy_pipelines.definitions"], outside, env)
    run([costudy, "db", "up"], outside, env)  # writes ./.env for dagster: DAGSTER_HOME, artifacts
    run([costudy, "migrate", "apply"], outside, env)
    sandbox = [costudy, "sandbox", "up", "--people", "40", "--days", "2", "--start", DAY]
    try:
        run(sandbox, outside, env)
        materialize = [dagster, "asset", "materialize", "-m", "costudy_pipelines.definitions"]
        run([*materialize, "--select", "whop_payments", "--partition", DAY], outside, env)
    finally:
        subprocess.run([costudy, "sandbox", "down"], cwd=outside, env=env, capture_output=True)

    with psycopg.connect(env["WAREHOUSE_DB_URL"]) as conn:
        logged = conn.execute(
            "select partition_key, status from sync_log where source = 'whop_payments'"
        ).fetchall()
        paid = conn.execute("select count(*) from whop_payments").fetchone()
    assert logged == [(DAY, "SUCCESS")]
    assert paid is not None and paid[0] > 0
    assert (outside / ".env").is_file() and (outside / ".costudy").is_dir()
    assert files_under(package_root.parent) == installed_files  # nothing written into the package


def test_shipped_dg_settings_are_the_checkouts() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["dg"]
    shipped = tomllib.loads((SHIPPED / "dg.toml").read_text())
    assert shipped["directory_type"] == pyproject["directory_type"]
    assert shipped["project"] == {
        key: pyproject["project"][key]
        for key in ("root_module", "defs_module", "code_location_name")
    }


def test_every_file_the_code_reads_is_shipped() -> None:
    """shipped/ links to the checkout's files: each resolves, and the wheel's patterns take
    every migration and view (a new folder or extension would otherwise be left out)."""
    package_data = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]["package-data"]["costudy_pipelines"]
    shipped = {
        path.relative_to(SHIPPED.parent).as_posix()
        for path in SHIPPED.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    matched = {name for name in shipped if any(fnmatch(name, p) for p in package_data)}
    assert shipped == matched
    assert (SHIPPED / "sql" / "views").resolve() == (PROJECT_ROOT / "sql" / "views").resolve()
