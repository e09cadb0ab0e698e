"""What the database benchmarks share: which server to run on, and how to measure this process.

A benchmark adds the options with `add_server_options(parser)`, runs inside
`with benchmark_server(args) as url:` (for --embedded it starts the project's embedded server,
and stops it at the end if it was not already running), makes its databases with
`scratch_database(url, prefix)`, and reports `cpu_seconds()` and `peak_rss_mb()` per stage
(`timed` runs a stage and prints its JSON line).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.embedded_pg import EmbeddedPostgres
from costudy_pipelines.lib.settings import costudy_home, embedded_port


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server-url",
        default=os.environ.get(
            "COSTUDY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--embedded", action="store_true", help="use the embedded PostgreSQL")


@contextmanager
def benchmark_server(args: argparse.Namespace) -> Iterator[str]:
    """The server URL to run on: --server-url, or the embedded server for --embedded, which
    is stopped afterwards when this benchmark started it (one already running stays up)."""
    if not args.embedded:
        yield args.server_url
        return
    server = EmbeddedPostgres(Path(costudy_home()) / "bench-pgdata", embedded_port())
    was_running = server.status().running
    server.start()
    try:
        yield server.server_url()
    finally:
        if not was_running:
            server.stop()


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new database on the server for the block (its URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with pg.admin_connection(server_url, source="--server-url") as conn:
        pg.create_database(conn, name)
    try:
        yield pg.url_for_database(server_url, name)
    finally:
        with pg.admin_connection(server_url, source="--server-url") as conn:
            pg.drop_database(conn, name)


def peak_rss_mb(pid: int | None = None) -> float:
    """A process's own peak resident memory (this one by default): Linux's VmHWM, the
    high-water mark of its address space since it started.

    Not getrusage's ru_maxrss: Linux keeps that across fork and exec, so a child reported its
    parent's peak when that was higher (load_ratio's load processes at 1M records all "peaked"
    at their parent's 200 MB, the world it had generated, whatever they used themselves).
    """
    try:
        with open(f"/proc/{pid or 'self'}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)  # no /proc: RSS now


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(stage: str, work: Callable[[], dict[str, Any]]) -> None:
    """Run one stage and print its JSON line: wall and CPU seconds, peak RSS, load average,
    and what the stage returned."""
    started, cpu = time.perf_counter(), cpu_seconds()
    found = work()
    print(
        json.dumps(
            {
                "stage": stage,
                "seconds": round(time.perf_counter() - started, 2),
                "cpu_seconds": round(cpu_seconds() - cpu, 2),
                "peak_rss_mb": peak_rss_mb(),
                "load_average": os.getloadavg()[0],
                **found,
            }
        ),
        flush=True,
    )
