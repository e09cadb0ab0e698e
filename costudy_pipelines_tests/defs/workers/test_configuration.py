"""The deployment's choices, read from the environment: executor, backfill ranges, pools. Bad
values fail at load with the variable's name; secrets never show unmasked."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import dagster as dg
import pytest

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.defs import executor
from costudy_pipelines.defs._source_assets import BACKFILL_DAYS_VAR, backfill_policy
from costudy_pipelines_tests.harness import HANG_S

BROKER = "pyamqp://127.0.0.1:5672/costudy"
BACKEND = "redis://127.0.0.1:6379/0"


def test_the_default_executor_is_dagsters_multiprocess_and_needs_no_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (executor.EXECUTOR_VAR, executor.BROKER_VAR, executor.BACKEND_VAR):
        monkeypatch.delenv(name, raising=False)
    chosen = executor.executor_from_environment()
    assert chosen.config_schema.default_value == {"multiprocess": {}}
    assert (
        chosen.get_requirements({"multiprocess": {}}) == dg.multiple_process_executor_requirements()
    )


def test_celery_is_chosen_with_its_urls_and_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(executor.EXECUTOR_VAR, "celery")
    monkeypatch.setenv(executor.BROKER_VAR, BROKER)
    monkeypatch.setenv(executor.BACKEND_VAR, BACKEND)
    monkeypatch.setenv(executor.STEP_TIMEOUT_VAR, "900")
    chosen = executor.executor_from_environment()
    assert chosen.config_schema.default_value == {"celery": {}}
    settings = executor.celery_app_args()["config_source"]
    assert settings.task_acks_late and settings.task_reject_on_worker_lost


@pytest.mark.parametrize(
    ("values", "named"),
    [  # over a valid celery setting; None unsets the variable
        ({executor.EXECUTOR_VAR: "dask"}, "COSTUDY_EXECUTOR='dask'"),
        ({executor.BROKER_VAR: None}, "CELERY_BROKER_URL"),
        ({executor.BACKEND_VAR: None}, "CELERY_BACKEND_URL"),
        ({executor.STEP_TIMEOUT_VAR: "an hour"}, "COSTUDY_STEP_TIMEOUT_S='an hour'"),
        ({executor.STEP_TIMEOUT_VAR: "0"}, "COSTUDY_STEP_TIMEOUT_S=0 must be at least 1"),
    ],
)
def test_bad_executor_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str | None], named: str
) -> None:
    valid = {
        executor.EXECUTOR_VAR: "celery",
        executor.BROKER_VAR: BROKER,
        executor.BACKEND_VAR: BACKEND,
    }
    for name, value in (valid | values).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=named):
        executor.executor_from_environment()


def test_the_workers_startup_line_masks_the_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    password = secrets.token_hex(8)
    monkeypatch.setenv(executor.BROKER_VAR, f"pyamqp://costudy:{password}@mq:5672/prod")
    monkeypatch.setenv(executor.BACKEND_VAR, f"redis://:{password}@redis:6379/0")
    line = executor.describe_connection()
    assert password not in line
    assert "mq:5672/prod" in line and "redis:6379/0" in line


def test_backfills_are_one_run_unless_a_range_size_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(BACKFILL_DAYS_VAR, raising=False)
    assert backfill_policy() == dg.BackfillPolicy.single_run()
    monkeypatch.setenv(BACKFILL_DAYS_VAR, "7")
    assert backfill_policy() == dg.BackfillPolicy.multi_run(max_partitions_per_run=7)
    for bad in ("a week", "0"):
        monkeypatch.setenv(BACKFILL_DAYS_VAR, bad)
        with pytest.raises(ValueError, match=BACKFILL_DAYS_VAR):
            backfill_policy()


def test_each_application_database_is_a_pool_of_its_own() -> None:
    pools = {
        asset.key.to_user_string(): asset.op.pool
        for asset in project_definitions().assets or []
        if isinstance(asset, dg.AssetsDefinition)
    }
    assert pools["website_votes"] == pools["website_demo_requests"] == "website_db"
    assert pools["platform_users"] == "platform_db"
    assert pools["course_orders"] == pools["course_enrollments"] == "course_db"


def test_the_range_size_reaches_every_dated_source_asset() -> None:
    """Read at load, in a fresh process as a deployment starts one."""
    listing = (
        "from costudy_pipelines.definitions import project_definitions\n"
        "for asset in project_definitions().resolve_asset_graph().assets_defs:\n"
        "    if asset.backfill_policy: print(asset.key.to_user_string(), asset.backfill_policy)\n"
    )
    env = {**os.environ, BACKFILL_DAYS_VAR: "5"}
    listed = subprocess.run(
        [sys.executable, "-c", listing], env=env, capture_output=True, text=True, timeout=HANG_S
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    policies = dict(line.split(" ", 1) for line in listed.stdout.splitlines())
    assert {"whop_payments", "ghl_contacts", "website_votes", "course_orders"} <= set(policies)
    assert set(policies.values()) == {"BackfillPolicy.multi_run(max_partitions_per_run=5)"}
