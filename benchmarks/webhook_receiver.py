"""The webhook receiver's ceiling: signed deliveries per second it takes, and where it sheds.

Starts `costudy webhook serve` (a process of its own) on a scratch platform database, then for
each concurrency level sends N distinct signed deliveries from that many connections at once
and prints one JSON line per level: deliveries accepted per second, latency p50/p99 of the
accepted ones, how many answers were 503 + Retry-After (beyond --max-in-flight; the sender
waits and sends again, as the website does), the receiver's CPU per delivery, and whether
every delivery is in the inbox once. The load generator shares the machine with the receiver.

    .venv/bin/python benchmarks/webhook_receiver.py --embedded
    .venv/bin/python benchmarks/webhook_receiver.py --deliveries 4000 --levels 16,128,512
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _checkout  # noqa: F401  (the checkout on sys.path: the tests' helpers)
import httpx
import psutil
from bench_server import add_server_options, benchmark_server, scratch_database

from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.reverse_sync import open_connection
from costudy_pipelines.lib.reverse_sync.webhook import (
    DEFAULT_MAX_IN_FLIGHT,
    SECRET_VAR,
    WEBHOOK_PATH,
    signed_headers,
)
from costudy_pipelines.lib.settings import DATABASES, PROJECT_ROOT
from costudy_pipelines_tests.harness import free_port


@contextmanager
def receiver(
    platform_url: str, secret: str, max_in_flight: int
) -> Iterator[tuple[psutil.Process, int]]:
    """`costudy webhook serve` on a free port, until the block ends (its process and port)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        env = os.environ | {spec.env_var: platform_url for spec in DATABASES}
        env |= {SECRET_VAR: secret, "COSTUDY_HOME": home}
        command = [str(Path(sys.executable).parent / "costudy"), "webhook", "serve"]
        command += ["--port", str(port), "--max-in-flight", str(max_in_flight)]
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("costudy webhook serve did not start") from None
                    time.sleep(0.1)
            yield psutil.Process(process.pid), port
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def request_bytes(port: int, secret: str, n: int) -> bytes:
    """One signed delivery as HTTP/1.1 bytes (a raw client: httpx would be the bottleneck)."""
    body = json.dumps({"event_type": "votes", "source_id": str(n + 1)}).encode()
    headers = signed_headers(secret, body) | {
        "Host": f"127.0.0.1:{port}",
        "Content-Length": str(len(body)),
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {WEBHOOK_PATH} HTTP/1.1\r\n{head}\r\n".encode() + body


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, float]:
    """The status and Retry-After of one response, its body read (the connection is kept)."""
    status = int((await reader.readline()).split()[1])
    length, retry_after = 0, 0.0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "retry-after":
            retry_after = float(value)
    await reader.readexactly(length)
    return status, retry_after


async def burst(port: int, secret: str, deliveries: int, concurrency: int) -> dict[str, Any]:
    """Send `deliveries` signed deliveries over `concurrency` connections, each shed one again
    after its Retry-After as a sender would; every answer's status, latencies of the 202s."""
    requests = [request_bytes(port, secret, n) for n in range(deliveries)]
    statuses: Counter[int] = Counter()
    latencies: list[float] = []

    async def sender() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while requests:
            request = requests.pop()
            sent = time.perf_counter()
            writer.write(request)
            status, retry_after = await read_answer(reader)
            statuses[status] += 1
            if status == 503:
                await asyncio.sleep(retry_after)
                requests.append(request)
            else:
                latencies.append(time.perf_counter() - sent)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "seconds": round(seconds, 2),
        "accepted_per_s": round(statuses[202] / seconds),
        "shed_503": statuses[503],
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "statuses": dict(sorted(statuses.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_options(parser)
    parser.add_argument("--deliveries", type=int, default=2000, help="per concurrency level")
    parser.add_argument("--levels", default="8,32,128,512", help="concurrent connections")
    parser.add_argument("--max-in-flight", type=int, default=DEFAULT_MAX_IN_FLIGHT)
    args = parser.parse_args()
    secret = secrets.token_hex(16)
    with benchmark_server(args) as server_url, scratch_database(server_url, "bench_hook") as url:
        apply_pending(url, PROJECT_ROOT / "sql" / "platform")
        with receiver(url, secret, args.max_in_flight) as (served, port):
            for concurrency in (int(level) for level in args.levels.split(",")):
                cpu_before = sum(served.cpu_times()[:2])
                result = asyncio.run(burst(port, secret, args.deliveries, concurrency))
                cpu = sum(served.cpu_times()[:2]) - cpu_before
                with open_connection(url, source="--server-url") as conn:
                    stored = conn.execute(
                        "select count(*) from reverse_sync_webhook_inbox where refusal is null"
                    ).fetchone()
                    conn.execute("truncate reverse_sync_webhook_inbox")
                line = {"concurrency": concurrency, "max_in_flight": args.max_in_flight}
                line |= result | {
                    "receiver_cpu_ms_per_delivery": round(cpu * 1000 / args.deliveries, 2)
                }
                line["every_202_stored"] = stored is not None and stored[0] == result[
                    "statuses"
                ].get(202, 0)
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
