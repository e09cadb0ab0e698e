"""A job for the executor tests, at module level so that a step's process can rebuild it
(dg.reconstructable): one step that crashes its process, one that reports where it ran."""

import os
import sys

import dagster as dg

from costudy_pipelines.defs.executor import executor_from_environment, forkserver_executor


@dg.op
def crash() -> None:
    os._exit(9)  # no exception, no cleanup: the process is simply gone


@dg.op
def where_it_ran() -> dg.Output[int]:
    return dg.Output(
        os.getpid(),
        metadata={"preloaded": "costudy_pipelines.step_preload" in sys.modules},
    )


@dg.job(executor_def=forkserver_executor())
def crash_beside_a_step() -> None:
    crash()
    where_it_ran()


@dg.job(executor_def=executor_from_environment())
def one_step_where_the_run_says() -> None:
    where_it_ran()
