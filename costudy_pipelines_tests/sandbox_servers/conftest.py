from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from costudy_pipelines.sandbox.servers import SandboxServer, WhopServer
from costudy_pipelines_tests.sandbox_servers.factory import whop_memberships, whop_payments


@pytest.fixture
def api_key() -> str:
    """A fresh key per test: nothing secret is written into the tests."""
    return secrets.token_urlsafe(16)


def api_client(server: SandboxServer, secret: str, **headers: str) -> httpx.Client:
    """An httpx client for a running server, with the bearer header its API checks."""
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {secret}", **headers},
        timeout=5,
    )


@pytest.fixture
def payments() -> list[dict[str, Any]]:
    return whop_payments(237)


@pytest.fixture
def whop(api_key: str, payments: list[dict[str, Any]]) -> Iterator[WhopServer]:
    with WhopServer(api_key=api_key, payments=payments, memberships=whop_memberships(30)) as server:
        yield server


@pytest.fixture
def client(whop: WhopServer, api_key: str) -> Iterator[httpx.Client]:
    """A client of the Whop server (modules testing another server define their own)."""
    with api_client(whop, api_key) as http:
        yield http
