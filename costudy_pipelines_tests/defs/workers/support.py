"""Real dagster-celery workers (`costudy worker` processes) on a vhost of their own, over a
running sandbox and fresh databases; every process a test starts is stopped after it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import psutil
import pytest

from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sandbox.world import WorldConfig
from costudy_pipelines_tests.harness import HANG_S

BIN = Path(sys.executable).parent


WORLD = WorldConfig(seed=1, people=200, days=3)


READY_S = HANG_S  # a worker imports celery and dagster: ~20 s on a quiet 2-core machine


RUN_S = HANG_S


MODULE = "costudy_pipelines.definitions"


# What deploy/compose.yaml's one-shot `storage` service runs before the long-lived processes:
# without it, processes starting together on an empty storage database race to create its
# tables, and Dagster does not retry the duplicate row type one of them then hits.
PREPARE_STORAGE = ("dagster", "instance", "migrate")


def prepare_storage(env: dict[str, str], home: Path) -> None:
    """Create Dagster's storage tables as the deployment does, before any process starts (in
    `home`: Dagster's CLI loads ./.env over the environment)."""
    program, *args = PREPARE_STORAGE
    done = subprocess.run(
        [str(BIN / program), *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]


T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout_s}s")


@dataclass
class Cluster:
    """The environment every process of the test shares, and the processes it started."""

    env: dict[str, str]
    home: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: list[str] = field(default_factory=list)  # names of the processes that are workers
    runs: list[subprocess.Popen[str]] = field(default_factory=list)

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        self.workers.append(name)
        return self.start(name, "costudy", "worker", "--name", name, "--concurrency", "1")

    def start(self, name: str, program: str, *args: str) -> subprocess.Popen[bytes]:
        """A long-lived process of the deployment (stopped by stop_all), logging to NAME.log."""
        with (self.home / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [str(BIN / program), *args],
                cwd=self.home,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed whole, children too
            )
        self.processes[name] = process
        return process

    def wait_ready(self, name: str) -> None:
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            assert self.processes[name].poll() is None, self.log(name)
            if " ready." in self.log(name):
                return
            time.sleep(0.5)
        raise AssertionError(f"worker {name} not ready within {READY_S}s:\n{self.log(name)}")

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")[-5000:]

    def pids(self, name: str) -> set[int]:
        """The worker's process and its pool's children."""
        root = psutil.Process(self.processes[name].pid)
        return {root.pid, *(child.pid for child in root.children(recursive=True))}

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its children: no cleanup, no goodbye to the broker."""
        _kill_group(self.processes[name])
        self.processes[name].wait(timeout=60)

    def stop_all(self) -> None:
        """Every process started here, and whatever they started in their process group (a
        daemon's code servers, multiprocessing helpers that ignore SIGTERM)."""
        for run in self.runs:
            _kill_group(run)
            run.wait(timeout=60)
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
            _kill_group(process)
            process.wait(timeout=60)

    def launch(self, selection: str, partition: str) -> subprocess.Popen[str]:
        """`dagster asset materialize` as an operator would type it: the run is orchestrated in
        that process, its steps run on the workers."""
        command = ["asset", "materialize", "--select", selection, "--partition", partition]
        process = subprocess.Popen(
            [str(BIN / "dagster"), *command, "-m", MODULE],
            cwd=self.home,  # Dagster's CLI loads ./.env over the environment
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.runs.append(process)
        return process

    def materialize(self, selection: str, partition: str) -> None:
        """Launch and wait: the run must succeed."""
        process = self.launch(selection, partition)
        output, _ = process.communicate(timeout=RUN_S)
        assert process.returncode == 0, output[-5000:]

    def instance(self, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
        """The same Dagster instance (dagster.yaml, this test's storage database)."""
        for name in ("DAGSTER_PG_URL", "COSTUDY_ARTIFACTS"):
            monkeypatch.setenv(name, self.env[name])
        return dg.DagsterInstance.from_config(str(PROJECT_ROOT))


def _kill_group(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group `process` leads (nothing if none of it is left)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
