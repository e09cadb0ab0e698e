"""The default executor: each step in a process forked from a forkserver that preloaded the
project, so a step that crashes fails alone and the others run to the end."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from costudy_pipelines.defs import executor
from costudy_pipelines_tests.defs import executor_jobs


def test_in_process_is_a_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(executor.EXECUTOR_VAR, "in_process")
    assert executor.executor_from_environment() is dg.in_process_executor


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
