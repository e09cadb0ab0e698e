"""Whop misbehaving, through the running sandbox's fault endpoint: a storm of 429s and 5xx
answers is retried to success; an error that does not pass fails the asset clearly and
leaves nothing of the partition it hit."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import dagster as dg
import httpx
import psycopg
import pytest

from costudy_pipelines.sandbox.world import World
from costudy_pipelines_tests.sources.runs import run_assets
from costudy_pipelines_tests.sources.support import Sandbox, impatient_whop
from costudy_pipelines_tests.sources.world_warehouse import expected, stored

WHOP = ("whop_payments", "whop_memberships", "whop_users")


def set_faults(sandbox: Sandbox, plan: dict[str, Any]) -> None:
    """The plan goes to the sandbox's server process over HTTP, as an operator would send it."""
    answer = httpx.put(f"{sandbox.base_url('whop')}/_sandbox/faults", json=plan, timeout=10)
    answer.raise_for_status()


@pytest.mark.slow
def test_a_429_storm_and_5xx_answers_are_retried_to_success(sandbox: Sandbox) -> None:
    set_faults(
        sandbox,
        {
            # one request per operation per half second: most requests are refused at first,
            # with Retry-After / retry-after-ms saying how long to wait
            "rate_limit": {"max_requests": 1, "window_seconds": 0.5},
            "faults": [
                {"kind": "error", "status": 503, "rate": 0.2},
                {"kind": "error", "status": 502, "count": 2},
            ],
            "seed": 3,
        },
    )
    run = run_assets(sandbox.first_day, sandbox.last_day, dg.AssetSelection.assets(*WHOP))

    assert run.success, run.failures
    counters = {name: run.run_figures(name) for name in WHOP}  # the run's, not a day's
    assert sum(c["rate_limited"] for c in counters.values()) >= 3, counters
    assert sum(c["server_errors"] for c in counters.values()) >= 3, counters
    truth, found = expected(sandbox.world()), stored(sandbox.warehouse_url)
    for source in WHOP:
        assert found.live_keys(source) == truth.keys[source], source


@pytest.mark.slow
def test_a_5xx_beyond_the_retry_cap_fails_clearly_and_writes_nothing_of_its_partition(
    sandbox: Sandbox,
) -> None:
    # The first request (the first day's first page) passes; every later one fails.
    set_faults(sandbox, {"faults": [{"kind": "error", "status": 502, "skip": 1}]})
    impatient = impatient_whop(3)
    run = run_assets(
        sandbox.first_day,
        sandbox.last_day,
        dg.AssetSelection.assets("whop_payments"),
        resources={"whop": impatient},
    )

    assert not run.success
    message = run.failures["whop_payments"]
    for part in ("Whop GET /payments", "HTTP 502", "after 3 attempt(s)", "wrote nothing"):
        assert part in message, message
    assert sandbox.state.tokens["whop"] not in message

    with psycopg.connect(sandbox.warehouse_url) as conn:
        sessions = conn.execute(
            "select partition_key, status, error_message from sync_log order by id"
        ).fetchall()
    *done, (failed_day, status, error) = sessions
    assert status == "FAILED" and "HTTP 502" in error
    assert sandbox.state.tokens["whop"] not in error
    assert all(status in ("SUCCESS", "PARTIAL") for _, status, _ in done)
    failed = date.fromisoformat(failed_day)
    world = sandbox.world()
    assert payments_created(world, failed, failed), "the failed day has payments to lose"
    stored_keys = stored(sandbox.warehouse_url).live_keys("whop_payments")
    assert stored_keys == payments_created(world, None, failed - timedelta(days=1))


def payments_created(world: World, first: date | None, last: date) -> set[str]:
    """Valid payments created on [first, last] (None: since the beginning, the undated too)."""
    valid = expected(world).keys["whop_payments"]
    created = {
        entry.key
        for entry in world.entries("whop_payments")
        if (first is None or world.created_at("whop_payments", entry.index).date() >= first)
        and world.created_at("whop_payments", entry.index).date() <= last
    }
    return created & valid
