"""A RabbitMQ virtual host per test: dagster-celery's queue name is fixed (`dagster`), so
tests running side by side (and other sessions on the machine) are kept apart by vhost.

Created with `rabbitmqctl` when it is on PATH (the broker runs on this machine), else through
the management API that COSTUDY_TEST_RABBITMQ_API names (http://user:password@host:15672).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

BROKER_VAR = "COSTUDY_TEST_BROKER_URL"  # the server, without a vhost
BACKEND_VAR = "COSTUDY_TEST_REDIS_URL"
API_VAR = "COSTUDY_TEST_RABBITMQ_API"
# pyamqp's default credentials are the broker's default user (guest): no secret in the URL.
DEFAULT_BROKER = "pyamqp://127.0.0.1:5672"
DEFAULT_BACKEND = "redis://127.0.0.1:6379/0"
BROKER_USER = os.environ.get("COSTUDY_TEST_RABBITMQ_USER", "guest")


def broker_url(vhost: str) -> str:
    return f"{os.environ.get(BROKER_VAR, DEFAULT_BROKER).rstrip('/')}/{vhost}"


def backend_url() -> str:
    return os.environ.get(BACKEND_VAR, DEFAULT_BACKEND)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def _api(method: str, path: str, body: dict[str, str] | None = None) -> None:
    api = os.environ.get(API_VAR)
    if not api:
        raise RuntimeError(f"neither rabbitmqctl on PATH nor {API_VAR} set: cannot make a vhost")
    httpx.request(method, f"{api.rstrip('/')}/api/{path}", json=body, timeout=30).raise_for_status()


@contextmanager
def vhost() -> Iterator[str]:
    """A fresh vhost the broker user may use fully; deleted (with its queues) afterwards."""
    name = f"costudy_test_{uuid.uuid4().hex[:10]}"
    local = shutil.which("rabbitmqctl") is not None
    if local:
        _rabbitmqctl("add_vhost", name)
        _rabbitmqctl("set_permissions", "-p", name, BROKER_USER, ".*", ".*", ".*")
    else:
        _api("PUT", f"vhosts/{name}")
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        _api("PUT", f"permissions/{name}/{BROKER_USER}", everything)
    try:
        yield name
    finally:
        if local:
            _rabbitmqctl("delete_vhost", name)
        else:
            _api("DELETE", f"vhosts/{name}")
