"""What starting costs the operator, against the floor of the tools underneath, in one run:

- `costudy --help` against `python -c "import click"` (the CLI imports only click for it);
- the project's run of one partition (`dagster asset materialize --select whop_payments
  --partition FIRST_DAY`, a sync of a fraction of a second) against a one-asset Dagster
  project's run (`dagster asset materialize -f one_asset.py`), same venv, same instance
  (the project's dagster.yaml on PostgreSQL), same executor.

Both runs are launched by the same `dagster` command line from a scratch copy of the checkout
(links) with its own COSTUDY_HOME and embedded server on a free port, set up as README says
(`costudy db up`, `migrate apply`, `sandbox up`); nothing of the checkout's own state is
touched. The two runs alternate, one of each per round. Prints one JSON line per measurement
(median and each repeat, wall seconds; median CPU seconds) with the load average before and
after, then a summary line with the ratios.

    .venv/bin/python benchmarks/run_start.py --repeats 3 --executor in_process
    .venv/bin/python benchmarks/run_start.py --without-bytecode   # as if no .pyc existed
    .venv/bin/python benchmarks/run_start.py --baseline main      # the project before, in turn

`--without-bytecode` points PYTHONPYCACHEPREFIX at an empty folder (with PYTHONDONTWRITEBYTECODE
set, nothing is written there): every module compiles from source, as it did before `make
install` compiled the bytecode.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The sandbox's world of 3 days starts on FIRST_DAY (given, not its default of "ending
# yesterday", so the partition measured is certain to be the world's first day, where its
# partitions begin: `sandbox up` writes COSTUDY_PARTITIONS_START).
FIRST_DAY = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()

ONE_ASSET = """
import os

import dagster as dg


@dg.asset
def one() -> int:
    return 1


EXECUTORS = {
    "in_process": dg.in_process_executor,
    "multiprocess": dg.multiprocess_executor.configured({"start_method": {"forkserver": {}}}),
}
defs = dg.Definitions(assets=[one], executor=EXECUTORS[os.environ["COSTUDY_EXECUTOR"]])
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def children_cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the process (and its children): on a machine others
    load, the CPU figure moves less than the wall one."""
    started, cpu = time.perf_counter(), children_cpu_s()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds, children_cpu_s() - cpu


Run = Callable[[], tuple[float, float]]


def report(name: str, samples: list[tuple[float, float]], before: list[float]) -> dict[str, Any]:
    seconds, cpu = zip(*samples, strict=True)
    line = {
        "benchmark": "run_start",
        "measurement": name,
        "median_s": round(statistics.median(seconds), 3),
        "runs_s": [round(value, 3) for value in seconds],
        "cpu_median_s": round(statistics.median(cpu), 3),
        "load_average_before": before,
        "load_average_after": load(),
    }
    print(json.dumps(line), flush=True)
    return line


def measure(name: str, repeats: int, run: Run) -> dict[str, Any]:
    before = load()
    return report(name, [run() for _ in range(repeats)], before)


def measure_alternately(runs: dict[str, Run], repeats: int) -> list[dict[str, Any]]:
    """Each run once per round, in turn: a load that rises or falls meanwhile (others' jobs)
    weighs on both alike instead of on whichever ran last."""
    before = load()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            samples[name].append(run())
    return [report(name, samples[name], before) for name in runs]


def scratch_project(folder: Path, root: Path = PROJECT_ROOT) -> None:
    """A "fresh clone": links to the checkout's files, its .venv, no .env and no state."""
    for entry in root.iterdir():
        if not entry.name.startswith(".") and entry.name not in {"storage", "logs", "history"}:
            (folder / entry.name).symlink_to(entry)
    (folder / ".venv").symlink_to(BIN.parent)
    (folder / "one_asset.py").write_text(ONE_ASSET)


def baseline_project(scratch: Path, revision: str, project: Path) -> tuple[Path, dict[str, str]]:
    """The project at `revision` (git archive, bytecode compiled as `make install` would), in a
    scratch folder of its own that shares the measured project's .env (its sandbox and
    instance); the variables that make `dagster` import it rather than the installed checkout."""
    source = scratch / "baseline-source"
    source.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "archive", revision], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    python = str(BIN / "python")
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(source)], check=True)
    folder = scratch / "baseline"
    folder.mkdir()
    scratch_project(folder, source)
    (folder / ".env").symlink_to(project / ".env")
    return folder, {"PYTHONPATH": str(source)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--executor", choices=["in_process", "multiprocess"], default="in_process")
    parser.add_argument("--without-bytecode", action="store_true")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run the project as it was at this git revision, in turn with the others",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="run-start-") as scratch:
        folder = Path(scratch) / "project"
        folder.mkdir()
        scratch_project(folder)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.endswith("_DB_URL") and not key.startswith(("DAGSTER_", "COSTUDY_"))
        }
        env |= {
            "COSTUDY_HOME": str(Path(scratch) / "home"),
            "COSTUDY_PG_PORT": str(free_port()),
            "COSTUDY_ENV_FILE": str(folder / ".env"),
        }
        if args.without_bytecode:
            (Path(scratch) / "no-pyc").mkdir()
            env |= {"PYTHONPYCACHEPREFIX": str(Path(scratch) / "no-pyc")}
            env |= {"PYTHONDONTWRITEBYTECODE": "1"}
        costudy = str(BIN / "costudy")
        python = str(BIN / "python")
        results = [
            measure(
                "costudy --help", args.repeats * 2, lambda: timed([costudy, "--help"], env, folder)
            ),
            measure(
                "python -c 'import click'",
                args.repeats * 2,
                lambda: timed([python, "-c", "import click"], env, folder),
            ),
        ]
        setup = (
            ["db", "up"],
            ["migrate", "apply"],
            ["sandbox", "up", "--people", "200", "--days", "3", "--start", FIRST_DAY],
        )
        try:
            for command in setup:
                timed([costudy, *command], env, folder)
            run_env = env | {"COSTUDY_EXECUTOR": args.executor}
            dagster = str(BIN / "dagster")
            project = [dagster, "asset", "materialize", "-m", "costudy_pipelines.definitions"]
            project += ["--select", "whop_payments", "--partition", FIRST_DAY]
            tiny = [dagster, "asset", "materialize", "-f", "one_asset.py", "--select", "one"]
            runs: dict[str, Run] = {
                f"one-asset Dagster project's run ({args.executor})": lambda: timed(
                    tiny, run_env, folder
                ),
                f"project's one-partition run, whop_payments ({args.executor})": lambda: timed(
                    project, run_env, folder
                ),
            }
            if args.baseline:
                base, base_env = baseline_project(Path(scratch), args.baseline, folder)
                runs[f"{args.baseline}'s one-partition run ({args.executor})"] = lambda: timed(
                    project, run_env | base_env, base
                )
            results += measure_alternately(runs, args.repeats)
        finally:
            for command in (["sandbox", "down"], ["db", "down"]):
                subprocess.run([costudy, *command], cwd=folder, env=env, capture_output=True)
    help_s, click_s, tiny_s, project_s = (line["median_s"] for line in results[:4])
    tiny_cpu_s, project_cpu_s = (line["cpu_median_s"] for line in results[2:4])
    summary = {
        "benchmark": "run_start",
        "summary": True,
        "costudy_help_s": help_s,
        "import_click_s": click_s,
        "project_run_over_one_asset_run": round(project_s / tiny_s, 2),
        "project_run_over_one_asset_run_cpu": round(project_cpu_s / tiny_cpu_s, 2),
        **(
            {
                "baseline_run_over_one_asset_run": round(results[4]["median_s"] / tiny_s, 2),
                "baseline_run_over_one_asset_run_cpu": round(
                    results[4]["cpu_median_s"] / tiny_cpu_s, 2
                ),
            }
            if args.baseline
            else {}
        ),
        "bytecode": not args.without_bytecode,
        "executor": args.executor,
        "load_average": load(),
        "utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
