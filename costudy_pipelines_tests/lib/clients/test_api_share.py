"""Steps of one pool call an API from processes of their own, each with its own rate limiter:
each takes its share of the API's limit (`set_api_share`, its pool's slots), so that together
they stay within it. Measured by the sandbox server, which enforces the limit and counts."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.synchronize import Barrier

import httpx
import pytest

from costudy_pipelines.lib.clients.http import RateLimit, RateLimiter, set_api_share
from costudy_pipelines.sandbox.servers.faults import FaultPlan
from costudy_pipelines.sandbox.servers.faults import RateLimit as ServerLimit
from costudy_pipelines.sandbox.servers.whop import WhopServer
from costudy_pipelines.sources.whop.client import VERSION_HEADER, WHOP_API_VERSION
from costudy_pipelines_tests.harness import HANG_S

LIMIT = RateLimit(requests=20, per_seconds=2.0)  # what the API publishes, scaled down
ENFORCED = ServerLimit(max_requests=20, window_seconds=2.0)  # the server refuses beyond it
PROCESSES = 2
SECONDS = 6.0  # three windows


def call(url: str, share: int, start: Barrier) -> None:
    """One step's process: its own limiter, as many requests as it lets through."""
    set_api_share(share)
    limiter = RateLimiter(LIMIT)
    headers = {"Authorization": "Bearer k", VERSION_HEADER: WHOP_API_VERSION}  # as the client
    with httpx.Client(headers=headers, timeout=30) as client:
        start.wait(timeout=HANG_S)
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            limiter.acquire()
            client.get(url)


def statuses(share: int) -> list[int]:
    with WhopServer(api_key="k", faults=FaultPlan(rate_limit=ENFORCED)) as server:
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(PROCESSES)
        url = f"{server.base_url}/api/v1/payments"
        processes = [
            context.Process(target=call, args=(url, share, start)) for _ in range(PROCESSES)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=HANG_S)
            assert process.exitcode == 0
        answered = [entry.status for entry in server.request_log]
    assert set(answered) <= {200, 429}, answered  # every request a real one, answered or refused
    return answered


@pytest.mark.parametrize("share", [PROCESSES, 1])
def test_processes_sharing_an_api_stay_within_its_limit_together(share: int) -> None:
    answered = statuses(share)
    refused = answered.count(429)
    if share == PROCESSES:
        assert refused == 0, f"{refused} of {len(answered)} requests over the limit"
        # and the limit was what bound them: about the limit's rate, not far below it
        assert len(answered) >= ENFORCED.max_requests * 2, len(answered)
    else:  # each process taking the whole limit: together, over it (what a share prevents)
        assert refused > 0, answered
