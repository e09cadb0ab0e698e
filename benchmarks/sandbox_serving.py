"""How fast the sandbox servers serve pages, over real HTTP, at scale.

Each server runs in a process of its own (as `costudy sandbox up` can run it) holding N records;
this process pages through all of them with httpx the way a sync does, and prints JSON:
records/s per server (wall clock, and per CPU second the server spent), seconds to load and
index the data, and the server's peak RSS.

    .venv/bin/python benchmarks/sandbox_serving.py              # 1,000,000 records each
    .venv/bin/python benchmarks/sandbox_serving.py --records 100000 --servers whop
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil
from bench_server import peak_rss_mb

from costudy_pipelines.sandbox.servers import (
    GoHighLevelServer,
    SandboxServer,
    SheetsServer,
    WhopServer,
)
from costudy_pipelines.sources.whop.client import VERSION_HEADER, WHOP_API_VERSION

KEY = "bench-key"
LOCATION = "loc_bench"
START = datetime(2024, 1, 1, tzinfo=UTC)


def whop_payments(count: int) -> Iterator[dict[str, Any]]:
    for n in range(count):
        created = (START + timedelta(seconds=n * 7)).isoformat().replace("+00:00", "Z")
        amount = f"{(n % 500) + 0.99:.2f}"
        yield {
            "id": f"pay_{n:012d}",
            "status": "paid" if n % 10 else "refunded",
            "created_at": created,
            "paid_at": created,
            "currency": "usd",
            "usd_total": {
                "amount": amount,
                "currency": "usd",
                "decimals": 2,
                "display_decimals": 2,
            },
            "total": float(amount),
            "refunded_amount": 0.0,
            "user": {"id": f"user_{n % 400_000:010d}", "email": f"person{n % 400_000}@example.com"},
            "membership": {"id": f"mem_{n:012d}"},
            "product": {"id": "prod_costudy", "title": "CoStudy Pro"},
        }


def ghl_contacts(count: int) -> Iterator[dict[str, Any]]:
    for n in range(count):
        added = (START + timedelta(seconds=n * 7)).isoformat(timespec="milliseconds")
        yield {
            "id": f"ct{n:018d}",
            "locationId": LOCATION,
            "email": f"person{n}@example.com",
            "firstName": f"First{n}",
            "lastName": f"Last{n}",
            "name": f"First{n} Last{n}",
            "tags": ["lead", "webinar"],
            "dateAdded": added.replace("+00:00", "Z"),
            "dateUpdated": added.replace("+00:00", "Z"),
            "customFields": [{"id": "cf_plan", "value": "pro"}],
            "source": "website",
        }


def sheet_rows(count: int) -> list[list[str]]:
    rows = [["email", "name", "amount", "date"]]
    rows += [
        [f"person{n}@example.com", f"Person {n}", f"{n % 300}.50", "2024-03-01"]
        for n in range(count)
    ]
    return rows


def build_server(system: str, records: int, port: int) -> SandboxServer:
    if system == "whop":
        return WhopServer(api_key=KEY, payments=whop_payments(records), port=port)
    if system == "gohighlevel":
        return GoHighLevelServer(token=KEY, contacts=ghl_contacts(records), port=port)
    sheets = {"bench": {"title": "Bench", "worksheets": {"Sheet1": sheet_rows(records)}}}
    return SheetsServer(sheets, port=port)


def serve(system: str, records: int, port: int, loaded: Any) -> None:
    started = time.perf_counter()
    server = build_server(system, records, port)
    loaded.value = time.perf_counter() - started
    server.serve_forever()


# ------------------------------------------------------------------ the clients
def page_whop(client: httpx.Client) -> int:
    seen, after = 0, None
    while True:
        params: dict[str, Any] = {"first": 100, "direction": "asc"}
        if after:
            params["after"] = after
        page = _ok(client.get("/api/v1/payments", params=params))
        seen += len(page["data"])
        if not page["page_info"]["has_next_page"]:
            return seen
        after = page["page_info"]["end_cursor"]


def page_ghl_list(client: httpx.Client) -> int:
    seen, params = 0, {"locationId": LOCATION, "limit": 100}
    while True:
        page = _ok(client.get("/contacts/", params=params))
        seen += len(page["contacts"])
        if len(page["contacts"]) < 100:
            return seen
        meta = page["meta"]
        params = {**params, "startAfter": meta["startAfter"], "startAfterId": meta["startAfterId"]}


def page_ghl_search(client: httpx.Client) -> int:
    seen, body = 0, {"locationId": LOCATION, "pageLimit": 500}
    while True:
        page = _ok(client.post("/contacts/search", json=body))
        contacts = page["contacts"]
        seen += len(contacts)
        if len(contacts) < 500:
            return seen
        body = {**body, "searchAfter": contacts[-1]["searchAfter"]}


def read_sheet(client: httpx.Client) -> int:
    _ok(client.get("/v4/spreadsheets/bench", params={"includeGridData": "false"}))
    values = _ok(client.get("/v4/spreadsheets/bench/values/%27Sheet1%27"))["values"]
    return len(values) - 1


def _ok(response: httpx.Response) -> Any:
    response.raise_for_status()
    return response.json()


CLIENTS: dict[str, list[tuple[str, Callable[[httpx.Client], int]]]] = {
    "whop": [("v1 payments, first=100", page_whop)],
    "gohighlevel": [
        ("GET /contacts/, limit=100", page_ghl_list),
        ("POST /contacts/search, pageLimit=500", page_ghl_search),
    ],
    "sheets": [("values of one 1-sheet spreadsheet", read_sheet)],
}
# Whop refuses a request without its version header; GoHighLevel needs its own
HEADERS = {
    "Authorization": f"Bearer {KEY}",
    "Version": "2021-07-28",
    VERSION_HEADER: WHOP_API_VERSION,
}


def bench(system: str, records: int) -> dict[str, Any]:
    port = _free_port()
    context = multiprocessing.get_context("spawn")
    loaded = context.Value("d", 0.0)
    process = context.Process(target=serve, args=(system, records, port, loaded), daemon=True)
    process.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, process)
        results = []
        server_process = psutil.Process(process.pid)
        with httpx.Client(base_url=base_url, headers=HEADERS, timeout=120) as client:
            for name, run in CLIENTS[system]:
                cpu_before = _cpu_seconds(server_process)
                started = time.perf_counter()
                served = run(client)
                elapsed = time.perf_counter() - started
                server_cpu = _cpu_seconds(server_process) - cpu_before
                results.append(
                    {
                        "client": name,
                        "records": served,
                        "seconds": round(elapsed, 2),
                        "records_per_second": round(served / elapsed),
                        # What the server could serve on one core of its own: the client and
                        # other processes on a shared machine slow the wall-clock figure.
                        "server_cpu_seconds": round(server_cpu, 2),
                        "records_per_server_cpu_second": round(served / max(server_cpu, 1e-9)),
                    }
                )
                if served != records:
                    raise SystemExit(f"{system}: {name} saw {served} records, expected {records}")
        return {
            "server": system,
            "records": records,
            "load_and_index_seconds": round(loaded.value, 2),
            "server_peak_rss_mb": round(peak_rss_mb(process.pid)),
            "runs": results,
        }
    finally:
        process.terminate()
        process.join(timeout=30)


def _wait_ready(base_url: str, process: multiprocessing.process.BaseProcess) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise SystemExit(f"server process exited with {process.exitcode}")
        try:
            httpx.get(f"{base_url}/_sandbox/health", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("server did not come up in 600 s")


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--servers", nargs="+", choices=sorted(CLIENTS), default=sorted(CLIENTS))
    args = parser.parse_args(argv)
    report = [bench(system, args.records) for system in args.servers]
    print(json.dumps({"benchmark": "sandbox_serving", "results": report}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
