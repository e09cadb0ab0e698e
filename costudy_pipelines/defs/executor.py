"""Where a run's steps execute, chosen by the deployment (`COSTUDY_EXECUTOR`):

- `multiprocess` (default): each step in a process of its own, forked from a forkserver that
  imported the project once per run (preload_modules), at most two steps at a time (the
  machine's cores). A step that crashes (killed, out of memory, a segfault) fails alone; the
  run goes on and reports it. Spawning a fresh interpreter per step instead re-imports Dagster
  and the project in every step: seconds each on a quiet machine, 50-80 s on a loaded one.
- `in_process`: every step in the run's own process, one after the other: no start cost at
  all, but a crashing step takes the whole run down with it.
- `celery`: dagster-celery workers on any number of machines.

COSTUDY_EXECUTOR is the default; a run chooses its own in its run config, and gets it:
`execution: {config: {in_process: {}}}`, `{multiprocess: {max_concurrent: 1}}` (forked from the
preloaded forkserver unless it names a `start_method`), `{celery: {step_timeout_s: 600}}`. Any
other key is refused when the run is launched, by Dagster's config check, which names the
three choices. (Before, the executor was a `configured` one whose schema accepts anything:
`in_process` was accepted and ignored.)

The README (Performance, Running on workers) has the measurement behind the default.

Under celery a worker acknowledges a step's message only once the step has finished and gives
it back to the broker when its process dies, so another worker re-runs the step (every step is
idempotent). A step that has no result within COSTUDY_STEP_TIMEOUT_S of its submission (no
worker alive, a step stuck) fails the run with a message naming the step and the last worker
seen on it. The broker and backend URLs may hold passwords: they come from the environment only
and are shown masked.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import dagster as dg
from dagster._core.definitions.executor_definition import (
    IN_PROC_CONFIG,
    MULTI_PROC_CONFIG,
    _core_in_process_executor_creation,
    _core_multiprocess_executor_creation,
)
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.plan.step import ExecutionStep
from dagster._core.execution.retries import RetryMode, get_retries_config

from costudy_pipelines.defs._run_monitoring import heartbeat, record_celery_task
from costudy_pipelines.lib import pg
from costudy_pipelines.lib.settings import positive_int_setting

if TYPE_CHECKING:  # celery (and dagster-celery) only where a celery run or worker needs them:
    from celery import Celery  # every other process that loads the definitions saves ~30 ms
    from celery.result import AsyncResult

EXECUTOR_VAR = "COSTUDY_EXECUTOR"
BROKER_VAR = "CELERY_BROKER_URL"
BACKEND_VAR = "CELERY_BACKEND_URL"
STEP_TIMEOUT_VAR = "COSTUDY_STEP_TIMEOUT_S"
DEFAULT_STEP_TIMEOUT_S = 4 * 3600  # a week-long backfill range of a slow API stays inside it
EXECUTORS = ("multiprocess", "in_process", "celery")
# What the forkserver imports before it forks any step: the project, its Definitions built.
PRELOAD_MODULES = ["costudy_pipelines.step_preload"]
MAX_CONCURRENT_STEPS = 2  # the machine's two cores; the API pools bound each API anyway

# What makes a killed worker lose nothing. The worker applies these (they are task options),
# so the executor and `costudy worker` must build their app from the same settings.
CELERY_SETTINGS: dict[str, Any] = {
    "task_acks_late": True,  # ack after the step, not on receipt
    "task_reject_on_worker_lost": True,  # a dead worker's step goes back to the queue
    "task_track_started": True,  # the backend knows which worker runs a step
    "worker_prefetch_multiplier": 1,  # a busy worker holds no other step hostage
    "broker_connection_retry_on_startup": True,
}


class StepLost(Exception):
    """A celery step had no result within the bound: no worker finished it."""


def _env_url(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ValueError(f"{EXECUTOR_VAR}=celery needs {name} (the celery broker/backend URL)")
    return value


def step_timeout_s() -> int:
    return positive_int_setting(STEP_TIMEOUT_VAR) or DEFAULT_STEP_TIMEOUT_S


def celery_app_args() -> dict[str, Any]:
    """The celery app's arguments from the environment (the executor and workers share them)."""
    from dagster_celery.executor import CeleryExecutor

    return CeleryExecutor(
        retries=RetryMode.DISABLED,
        broker=_env_url(BROKER_VAR),
        backend=_env_url(BACKEND_VAR),
        config_source=CELERY_SETTINGS,
    ).app_args()


def worker_app() -> Celery:
    """The celery app a `costudy worker` serves: dagster-celery's step task, our settings."""
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    app = make_app(celery_app_args())
    create_task(app)
    return app


def describe_connection() -> str:
    """Broker and backend, passwords masked, for a startup line."""
    return f"broker {pg.mask(_env_url(BROKER_VAR))}, backend {pg.mask(_env_url(BACKEND_VAR))}"


class BoundedResult:
    """A step's AsyncResult that gives up after a deadline, naming the step and its worker."""

    def __init__(self, result: AsyncResult, step_key: str, timeout_s: int) -> None:
        self.result = result
        self.step_key = step_key
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s

    def ready(self) -> bool:
        return self.result.ready() or time.monotonic() > self.deadline

    def get(self) -> Any:
        if self.result.ready():
            return self.result.get()
        worker = self.last_worker()
        self.revoke(terminate=True)  # never let it finish later, behind the failed run
        raise StepLost(
            f"step {self.step_key} had no result within {self.timeout_s}s "
            f"({STEP_TIMEOUT_VAR}); last worker on it: {worker}"
        )

    def last_worker(self) -> str:
        """The worker the backend last saw running the step (task_track_started)."""
        info = self.result.info if self.result.state == "STARTED" else None
        if isinstance(info, Mapping) and info.get("hostname"):
            return f"{info['hostname']} (pid {info.get('pid')})"
        return f"none (task {self.result.id} is {self.result.state})"

    def revoke(self, terminate: bool = False) -> None:
        self.result.revoke(terminate=terminate, signal="SIGKILL")


@cache
def bounded_celery_executor() -> Callable[..., dg.Executor]:
    """dagster-celery's executor, with a bound on how long any step may go without a result
    (a class made on first use: dagster-celery imports celery)."""
    from dagster_celery.core_execution_loop import core_celery_execution_loop
    from dagster_celery.executor import CeleryExecutor, _submit_task

    class BoundedCeleryExecutor(CeleryExecutor):
        def __init__(self, timeout_s: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.timeout_s = timeout_s

        def execute(
            self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
        ) -> Iterator[dg.DagsterEvent]:
            def submit(app: Celery, context: Any, step: ExecutionStep, *args: Any) -> BoundedResult:
                result = _submit_task(app, context, step, *args)
                record_celery_task(context.instance, context.run_id, step.key, result.id)
                return BoundedResult(result, step.key, self.timeout_s)

            return core_celery_execution_loop(
                plan_context, execution_plan, step_execution_fn=submit
            )

    return BoundedCeleryExecutor


REVOKE_TIMEOUT_S = 30.0


def revoke_tasks(task_ids: list[str]) -> bool:
    """Revoke steps of a run failed from outside (run monitoring): a worker running one kills it,
    a worker receiving one later drops it. Whether the broadcast went out within
    REVOKE_TIMEOUT_S (a broker out of reach must not stall the daemon's monitoring: a step the
    revocation misses is refused its commit instead, defs/_source_assets.py)."""
    from dagster_celery.make_app import make_app

    app = make_app(celery_app_args())
    app.conf.broker_connection_timeout = 10
    app.conf.broker_connection_max_retries = 2
    sent = threading.Event()

    def broadcast() -> None:
        app.control.revoke(task_ids, terminate=True, signal="SIGKILL")
        sent.set()

    threading.Thread(target=broadcast, name="revoke", daemon=True).start()
    return sent.wait(REVOKE_TIMEOUT_S)


class MonitoredExecutor(dg.Executor):
    """Any of the three, with the run marked and beating while it executes (run monitoring
    checks every run by these, whatever launched it: defs/_run_monitoring.py)."""

    def __init__(self, inner: dg.Executor) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        """The inner executor's own attributes (celery's loop asks for `app_args()`)."""
        return getattr(self.inner, name)

    @property
    def retries(self) -> RetryMode:
        return self.inner.retries

    @property
    def step_dependency_config(self) -> Any:
        return self.inner.step_dependency_config

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[dg.DagsterEvent]:
        with heartbeat(plan_context.instance, plan_context.run_id):
            yield from self.inner.execute(plan_context, execution_plan)


def executor_choice() -> str:
    choice = os.environ.get(EXECUTOR_VAR) or "multiprocess"
    if choice not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_VAR}={choice!r}: expected one of {', '.join(EXECUTORS)}")
    return choice


FORKSERVER: dict[str, Any] = {
    "max_concurrent": MAX_CONCURRENT_STEPS,
    "start_method": {"forkserver": {"preload_modules": PRELOAD_MODULES}},
}


def forkserver_executor() -> dg.ExecutorDefinition:
    """Dagster's multiprocess executor, steps forked from a forkserver that preloads the
    project (the step's process starts with everything imported)."""
    return dg.multiprocess_executor.configured(FORKSERVER)


# What a run may choose in `execution: {config: ...}`: exactly one of these.
CHOICES: dict[str, Any] = {
    "multiprocess": MULTI_PROC_CONFIG,
    "in_process": IN_PROC_CONFIG,
    "celery": dg.Field(
        {
            "retries": get_retries_config(),
            "step_timeout_s": dg.Field(
                int, is_required=False, description=f"default {STEP_TIMEOUT_VAR}"
            ),
        },
        description="Steps on `costudy worker`s (CELERY_BROKER_URL, CELERY_BACKEND_URL).",
    ),
}


def _requirements(config: Mapping[str, object]) -> list[dg.ExecutorRequirement]:
    return [] if "in_process" in config else list(dg.multiple_process_executor_requirements())


def _create(init_context: dg.InitExecutorContext) -> dg.Executor:
    return MonitoredExecutor(_create_inner(init_context))


def _create_inner(init_context: dg.InitExecutorContext) -> dg.Executor:
    ((choice, raw),) = init_context.executor_config.items()
    config: dict[str, Any] = dict(cast(Mapping[str, Any], raw or {}))
    if choice == "in_process":
        return _core_in_process_executor_creation(config)
    if choice == "multiprocess":
        if config.get("max_concurrent") is None:
            config["max_concurrent"] = FORKSERVER["max_concurrent"]
        if not config.get("start_method"):
            config["start_method"] = FORKSERVER["start_method"]
        return _core_multiprocess_executor_creation(config)
    return bounded_celery_executor()(
        timeout_s=config.get("step_timeout_s") or step_timeout_s(),
        # read where the run executes, never stored in the run's config
        broker=_env_url(BROKER_VAR),
        backend=_env_url(BACKEND_VAR),
        config_source=CELERY_SETTINGS,
        retries=RetryMode.from_config(config["retries"]),
    )


def executor_from_environment() -> dg.ExecutorDefinition:
    """The project's executor: COSTUDY_EXECUTOR's choice by default, a run's own choice when
    its run config makes one (see the module's docstring)."""
    choice = executor_choice()
    if choice == "celery":
        celery_app_args()  # fail at load, naming the missing variable, not at the first run
        step_timeout_s()
    return dg.ExecutorDefinition(
        name="costudy",
        config_schema=dg.Field(dg.Selector(CHOICES), default_value={choice: {}}),
        executor_creation_fn=_create,
        requirements=_requirements,
        description=f"multiprocess, in_process or celery per run; default {choice} "
        f"({EXECUTOR_VAR})",
    )


defs = dg.Definitions(executor=executor_from_environment())
