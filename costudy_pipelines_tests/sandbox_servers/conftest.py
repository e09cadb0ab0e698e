from __future__ import annotations

import secrets

import pytest


@pytest.fixture
def api_key() -> str:
    """A fresh key per test: nothing secret is written into the tests."""
    return secrets.token_urlsafe(16)
