"""Issue 27's figures in one run, each beside the load average: the load path against a bare
COPY + upsert for both shapes (load_ratio.py), end to end from the sandbox servers against the
world's files (load_path.py, both modes), and each API source's requests per second against
its limit with the sandbox servers' documented rate limits switched on (load_path.py
--modes servers --api-rate-limits documented over the world's 90 day partitions).

Each part runs the benchmark script as a process of its own and forwards its JSON lines
(tagged with `part`); the last line is the summary of all three, with the load average
(1, 5, 15 minutes) before and after each part.

    .venv/bin/python benchmarks/performance.py --records 20000 \\
        --server-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
API_SOURCES = ("whop_payments", "whop_memberships", "whop_users", "ghl_contacts")


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def run_part(part: str, script: str, arguments: list[str]) -> tuple[list[dict], dict[str, Any]]:
    """The script's JSON lines, forwarded as they come, and what the part cost."""
    before, started = load_average(), time.perf_counter()
    command = [sys.executable, str(HERE / script), *arguments]
    lines: list[dict[str, Any]] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        for text in child.stdout:
            line = json.loads(text)
            lines.append(line)
            print(json.dumps({"part": part, **line}), flush=True)
    if child.returncode != 0:
        raise SystemExit(f"{part}: {script} exited {child.returncode}")
    cost = {
        "seconds": round(time.perf_counter() - started, 1),
        "load_average_before": before,
        "load_average_after": load_average(),
    }
    return lines, cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="world size for all parts")
    parser.add_argument(
        "--repeat", type=int, default=3, help="load_ratio: runs per path, median (default 3)"
    )
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    server = [f"--server-url={args.server_url}"]
    records = f"--records={args.records}"

    ratio_lines, ratio_cost = run_part(
        "load_ratio", "load_ratio.py", [records, f"--repeat={args.repeat}", *server]
    )
    path_lines, path_cost = run_part(
        "servers_vs_files",
        "load_path.py",
        [records, "--baseline-records=0", "--modes=files,servers", "--stages=full", *server],
    )
    limit_lines, limit_cost = run_part(
        "rate_limits",
        "load_path.py",
        [
            records,
            "--baseline-records=0",
            "--modes=servers",
            "--stages=full",
            "--api-rate-limits=documented",
            f"--sources={','.join(API_SOURCES)}",
            *server,
        ],
    )

    ratios = {
        line["shape"]: line["ratio"]
        for line in ratio_lines
        if "ratio" in line and "shape" in line and line.get("world_records") == args.records
    }
    path_summary = next(line for line in path_lines if line.get("stage") == "summary")
    per_source = {
        line["source"]: {
            name: line.get(name)
            for name in (
                "records",
                "sessions",
                "api_requests",
                "seconds",
                "requests_per_s",
                "allowed_requests_per_s",
                "requests_floor_ratio",
                "sandbox_allowed_requests_per_s",
                "sandbox_rate_ratio",
                "rate_limited_429",
                "rate_limit_wait_s",
            )
        }
        for line in limit_lines
        if line.get("source") in API_SOURCES
    }
    print(
        json.dumps(
            {
                "part": "summary",
                "records": args.records,
                "load_ratio": ratios | ratio_cost,
                "servers_to_files": path_summary.get("servers_to_files", {})
                | {
                    "files_rows_per_s": path_summary["load_path"]["rows_per_s"],
                    "servers_rows_per_s": path_summary["end_to_end"]["rows_per_s"],
                }
                | path_cost,
                "api_rates": per_source | limit_cost,
                "load_average": load_average(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
