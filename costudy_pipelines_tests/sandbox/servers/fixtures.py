"""The sandbox servers' fixtures (a Whop server and a client of it), shared by the tests of
the servers and of each source's sandbox: a plugin of the root conftest."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from costudy_pipelines.sandbox.servers import WhopServer
from costudy_pipelines.sources.whop.client import VERSION_HEADER, WHOP_API_VERSION
from costudy_pipelines_tests.sandbox.servers.factory import whop_memberships, whop_payments
from costudy_pipelines_tests.sandbox.servers.support import api_client


@pytest.fixture
def api_key() -> str:
    """A fresh key per test: nothing secret is written into the tests."""
    return secrets.token_urlsafe(16)


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
    with api_client(whop, api_key, **{VERSION_HEADER: WHOP_API_VERSION}) as http:
        yield http
