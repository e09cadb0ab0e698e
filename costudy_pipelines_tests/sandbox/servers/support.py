from __future__ import annotations

import httpx

from costudy_pipelines.sandbox.servers import SandboxServer


def api_client(server: SandboxServer, secret: str, **headers: str) -> httpx.Client:
    """An httpx client for a running server, with the bearer header its API checks."""
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {secret}", **headers},
        timeout=5,
    )
