"""What the database benchmarks share: which server to run on, and how to measure this process.

A benchmark adds the options with `add_server_options(parser)`, gets its server with
`server_url(args)` (starting the embedded one for --embedded; stop it afterwards), and
reports `cpu_seconds()` and `peak_rss_mb()` per stage.
"""

from __future__ import annotations

import argparse
import os
import resource
from pathlib import Path

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


def server_url(args: argparse.Namespace) -> tuple[str, EmbeddedPostgres | None]:
    if not args.embedded:
        return args.server_url, None
    server = EmbeddedPostgres(Path(costudy_home()) / "bench-pgdata", embedded_port())
    server.start()
    return server.server_url(), server


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
