"""Benchmark of the load path: validation + COPY + set-based upserts, then two re-syncs.

Dumps N synthetic Whop v1 payments (nested user, Money objects and floats, ISO times; about
four payments per person) to a JSON-lines file, then streams that file (parsed line by line,
as a client parses pages) through `sync_session` as one full sync, re-syncs the same records
(must write 0 rows) and a version with 1 % changed. Prints one JSON line per stage: wall
seconds, rows/s, this process's CPU seconds, peak RSS, and the machine's load average (the
machine is shared: CPU seconds are the steadier measure).

    .venv/bin/python benchmarks/load_path.py --records 100000 \
        --server-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/load_path.py --embedded      # the project's embedded server

A fresh database is created on the server for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from bench_server import add_server_options, cpu_seconds, peak_rss_mb, server_url

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.loading import LoadOptions, sources, sync_session
from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.settings import PROJECT_ROOT, costudy_home

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
FIRST_NAMES = ("Ana", "Bruno", "Chloé", "Dmitri", "Emeka", "Fatima", "Grace", "Hiro", "Inés")
LAST_NAMES = ("Okafor", "Müller", "Smith", "O'Brien", "García", "Nguyen", "Kowalski", "Lee")
PRICES = (9.99, 19.0, 49.0, 99.5, 199.0)


def payment(i: int) -> dict[str, Any]:
    """A Whop v1 payment as the API returns it; every 4th person's money is a Money object."""
    person = i // 4
    first, last = FIRST_NAMES[person % 9], LAST_NAMES[person % 8]
    price = PRICES[i % 5]
    created = (EPOCH + timedelta(seconds=37 * i)).isoformat().replace("+00:00", "Z")
    money: Any = (
        {"amount": f"{price:.2f}", "currency": "usd", "decimals": 2, "display_decimals": 2}
        if person % 4 == 0
        else price
    )
    return {
        "id": f"pay_{i:010d}",
        "status": "paid",
        "substatus": "succeeded",
        "currency": "usd",
        "total": money,
        "subtotal": money,
        "usd_total": money,
        "refunded_amount": 0.0,
        "created_at": created,
        "paid_at": created,
        "user": {
            "id": f"user_{person:09d}",
            "email": f"{first}.{last}.{person}@Example.com".replace("'", ""),
            "name": f"{first} {last}",
            "username": f"{first.lower()}{person}",
        },
        "membership": {"id": f"mem_{person:09d}", "status": "active"},
        "product": {"id": f"prod_{i % 7}", "title": "Typing mastery"},
        "plan": {"id": f"plan_{i % 3}"},
        "payment_method_type": "card",
        "card_brand": "visa",
        "card_last4": f"{i % 10000:04d}",
        "billing_reason": "subscription_cycle",
        "metadata": {"utm_source": "newsletter", "campaign": "spring"},
    }


def dump(path: Path, n: int) -> None:
    with path.open("wb") as out:
        for i in range(n):
            out.write(orjson.dumps(payment(i)) + b"\n")


def read_dump(path: Path, *, change_every: int = 0) -> Iterator[dict[str, Any]]:
    """The dumped payments; with change_every, every n-th one refunded (a changed record)."""
    with path.open("rb") as lines:
        for i, line in enumerate(lines):
            record = orjson.loads(line)
            if change_every and i % change_every == 0:
                record["status"] = "refunded"
                record["refunded_amount"] = 9.99
            yield record


def apply_warehouse_sql(url: str) -> None:
    """The warehouse schema, through the project's migration runner."""
    apply_pending(url, PROJECT_ROOT / "sql" / "warehouse")


def run_stage(
    name: str, url: str, path: Path, n: int, options: LoadOptions, change_every: int
) -> dict[str, Any]:
    started, cpu_started = time.perf_counter(), cpu_seconds()
    report = sync_session(
        url,
        sources.whop_payments(),
        read_dump(path, change_every=change_every),
        full=True,
        run_id=f"bench-{name}",
        options=options,
    )
    seconds = time.perf_counter() - started
    return {
        "stage": name,
        "records": n,
        "seconds": round(seconds, 2),
        "rows_per_s": round(n / seconds),
        "client_cpu_s": round(cpu_seconds() - cpu_started, 2),
        "peak_rss_mb": peak_rss_mb(),
        "load_average": os.getloadavg()[0],
        "rows_written": report.written,
        "inserted": report.inserted,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "users_created": report.users_created,
        "users_updated": report.users_updated,
        "status": report.status,
        "timings": report.timings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=LoadOptions().chunk_size)
    add_server_options(parser)
    args = parser.parse_args()
    admin_url, embedded = server_url(args)
    name = f"bench_load_{uuid.uuid4().hex[:8]}"
    with pg.admin_connection(admin_url, source="--server-url") as conn:
        pg.create_database(conn, name)
    url = pg.url_for_database(admin_url, name)
    options = LoadOptions(chunk_size=args.chunk_size)
    path = costudy_home() / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        apply_warehouse_sql(url)
        started = time.perf_counter()
        dump(path, args.records)
        dumped = {"stage": "dump", "records": args.records}
        print(json.dumps({**dumped, "seconds": round(time.perf_counter() - started, 2)}))
        stages = (("full", 0), ("no_change_resync", 0), ("one_percent_changed_resync", 100))
        for stage, change_every in stages:
            result = run_stage(stage, url, path, args.records, options, change_every)
            print(json.dumps(result), flush=True)
    finally:
        path.unlink(missing_ok=True)
        with pg.admin_connection(admin_url, source="--server-url") as conn:
            pg.drop_database(conn, name)
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
