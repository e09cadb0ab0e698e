"""Benchmark of what starting a step costs under each executor choice (COSTUDY_EXECUTOR): a job
of N trivial steps in a module that loads the project's Definitions (as every step of a code
location does), run by Dagster as a launched run is (dg.execute_job), under

in_process   every step in the run's process: no start cost, no isolation;
spawn        Dagster's multiprocess default: each step a fresh interpreter that imports
             Dagster and the project and builds the Definitions;
forkserver   the project's default (defs/executor.py): each step forked from a forkserver
             that preloaded them (costudy_pipelines/step_preload.py), once per run.

Prints one JSON line per executor: run seconds, the median time from Dagster starting a step's
worker to the step starting, the run's CPU seconds (this process and the processes it waited
for: spawned steps count, steps forked by the forkserver do not), and the load average
beside them (a number from a loaded machine reads against its load).

    STEP_START_STEPS=8 .venv/bin/python benchmarks/step_start.py --executors in_process,forkserver
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from typing import Any

import dagster as dg

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.defs.executor import MAX_CONCURRENT_STEPS, forkserver_executor

project_definitions()  # what a step of the code location loads before it runs
STEPS = int(os.environ.get("STEP_START_STEPS", "8"))  # the step processes see it too

EXECUTORS: dict[str, dg.ExecutorDefinition] = {
    "in_process": dg.in_process_executor,
    "spawn": dg.multiprocess_executor.configured(
        {"max_concurrent": MAX_CONCURRENT_STEPS, "start_method": {"spawn": {}}}
    ),
    "forkserver": forkserver_executor(),
}


def make_job(name: str, executor: dg.ExecutorDefinition) -> dg.JobDefinition:
    @dg.op(out=dg.Out(int))
    def step() -> int:
        return os.getpid()

    @dg.job(name=name, executor_def=executor)
    def steps() -> None:
        for number in range(STEPS):
            step.alias(f"step_{number}")()

    return steps


# module-level factories: dg.reconstructable rebuilds a job in a step's process from these
def in_process_job() -> dg.JobDefinition:
    return make_job("in_process", EXECUTORS["in_process"])


def spawn_job() -> dg.JobDefinition:
    return make_job("spawn", EXECUTORS["spawn"])


def forkserver_job() -> dg.JobDefinition:
    return make_job("forkserver", EXECUTORS["forkserver"])


JOBS = {"in_process": in_process_job, "spawn": spawn_job, "forkserver": forkserver_job}


def cpu_seconds() -> float:
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                          resource.RUSAGE_CHILDREN))  # fmt: skip
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(name: str) -> dict[str, Any]:
    with dg.instance_for_test() as instance:
        started, cpu = time.perf_counter(), cpu_seconds()
        result = dg.execute_job(dg.reconstructable(JOBS[name]), instance=instance)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu
        assert result.success, f"{name}: the run failed"
        logs = instance.all_logs(result.run_id)
    first: dict[tuple[str, str], float] = {}
    for entry in logs:
        event = entry.dagster_event
        if event is not None and entry.step_key is not None:
            first.setdefault((entry.step_key, event.event_type_value), entry.timestamp)
    starts = [
        first[step, "STEP_START"]
        - first.get((step, "STEP_WORKER_STARTING"), first[step, "STEP_START"])
        for step in {step for step, _ in first}
    ]
    return {
        "benchmark": "step_start",
        "executor": name,
        "steps": STEPS,
        "run_seconds": round(seconds, 2),
        "step_start_median_s": round(statistics.median(starts), 2),
        "run_cpu_s": round(cpu, 2),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executors", default="in_process,forkserver,spawn")
    args = parser.parse_args()
    for name in args.executors.split(","):
        print(json.dumps(measure(name)), flush=True)


if __name__ == "__main__":
    main()
