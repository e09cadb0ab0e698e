"""Starting and stopping servers: in a thread (tests), and several in one process of their own
(what `costudy sandbox up` runs)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import httpx
import pytest

from costudy_pipelines.sandbox.servers import SheetsServer, WhopServer


def port_accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_start_on_a_free_port_then_on_the_same_port_again() -> None:
    server = WhopServer(api_key="k")
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.base_url
    server.start()
    port = server.port
    assert port > 0 and server.base_url == f"http://127.0.0.1:{port}"
    with pytest.raises(RuntimeError, match="already running"):
        server.start()
    server.stop()
    assert not port_accepts(port)
    server.stop()  # twice is fine
    with WhopServer(api_key="k", port=port) as again:
        assert httpx.get(again.base_url + "/_sandbox/health").json()["system"] == "whop"


def test_a_taken_port_fails_clearly() -> None:
    with SheetsServer({}) as first, pytest.raises(OSError):
        SheetsServer({}, port=first.port).start()


@pytest.mark.slow
def test_several_servers_in_one_process_until_sigterm() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        from costudy_pipelines.sandbox.servers import (
            GoHighLevelServer, PlatformApiServer, SheetsServer, WhopServer, run_until_signalled)

        def ready(servers):
            print(json.dumps({s.system: s.base_url for s in servers}), flush=True)

        run_until_signalled(
            [WhopServer(api_key="k"), GoHighLevelServer(token="t"), SheetsServer({}),
             PlatformApiServer(token="p")],
            on_ready=ready,
        )
        print("stopped", flush=True)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        assert set(urls) == {"whop", "gohighlevel", "sheets", "platform"}
        for system, url in urls.items():
            assert httpx.get(url + "/_sandbox/health", timeout=5).json()["system"] == system
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert process.stdout.read().strip() == "stopped"
        assert not any(port_accepts(int(url.rsplit(":", 1)[1])) for url in urls.values())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
