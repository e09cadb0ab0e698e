"""The default executor: each step in a process forked from a forkserver that preloaded the
project, so a step that crashes fails alone and the others run to the end."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
import pytest

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.defs import executor
from costudy_pipelines_tests.defs import executor_jobs


def test_in_process_is_a_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(executor.EXECUTOR_VAR, "in_process")
    assert executor.executor_from_environment().config_schema.default_value == {"in_process": {}}


def where_the_step_ran(run_config: dict[str, Any]) -> tuple[int, bool]:
    """(pid, preloaded) of the one step of a run launched with `run_config`."""
    with dg.instance_for_test() as instance:
        result = dg.execute_job(
            dg.reconstructable(executor_jobs.one_step_where_the_run_says),
            instance=instance,
            run_config=run_config,
        )
        assert result.success
        [output] = [event for event in result.all_events if event.is_successful_output]
    assert output.pid is not None
    return output.pid, output.step_output_data.metadata["preloaded"].value


@pytest.mark.slow
def test_a_runs_executor_choice_is_honoured() -> None:
    """`execution: {config: {in_process: {}}}` runs the step in the run's process (it was
    accepted and ignored); `multiprocess` forks it from the preloaded forkserver."""
    pid, _ = where_the_step_ran({"execution": {"config": {"in_process": {}}}})
    assert pid == os.getpid()
    pid, preloaded = where_the_step_ran({"execution": {"config": {"multiprocess": {}}}})
    assert pid != os.getpid() and preloaded is True
    pid, preloaded = where_the_step_ran({})  # the default, COSTUDY_EXECUTOR unset: multiprocess
    assert pid != os.getpid() and preloaded is True


def test_an_unknown_executor_in_run_config_is_refused_at_launch_naming_the_choices() -> None:
    assert project_definitions().executor is not None
    assert project_definitions().executor.name == "costudy"  # the one the tests' job uses
    job = executor_jobs.one_step_where_the_run_says
    dg.validate_run_config(job, {"execution": {"config": {"in_process": {}}}})
    dg.validate_run_config(job, {"execution": {"config": {"multiprocess": {"max_concurrent": 1}}}})
    with pytest.raises(dg.DagsterInvalidConfigError) as refused:
        dg.validate_run_config(job, {"execution": {"config": {"dask": {}}}})
    message = str(refused.value)
    assert "dask" in message
    assert all(choice in message for choice in ("multiprocess", "in_process", "celery"))


@pytest.mark.slow
def test_a_crashing_step_fails_alone_and_steps_start_with_the_project_loaded() -> None:
    with dg.instance_for_test() as instance:
        result = dg.execute_job(
            dg.reconstructable(executor_jobs.crash_beside_a_step), instance=instance
        )
        events = result.all_events
    assert not result.success
    failed = {event.step_key for event in events if event.is_step_failure}
    succeeded = {event.step_key for event in events if event.is_step_success}
    assert (failed, succeeded) == ({"crash"}, {"where_it_ran"})
    [output] = [event for event in events if event.is_successful_output]
    assert output.pid != os.getpid()  # the step ran in a process of its own
    preloaded = output.step_output_data.metadata["preloaded"]
    assert preloaded.value is True  # forked from the forkserver that preloaded the project
