"""How fast the file and database readers stream, and that their memory stays flat.

Each stage runs in a process of its own (so its peak RSS is its own) at 100,000 rows and at
N rows, and prints one JSON line: rows, seconds, rows/s, peak RSS. Flat memory means the
peak at N is about the peak at 100,000.

    .venv/bin/python benchmarks/source_readers.py                   # N = 1,000,000
    .venv/bin/python benchmarks/source_readers.py --rows 200000 \\
        --server-url postgresql://postgres@127.0.0.1:5432/postgres

The database stage creates a scratch database on the server and drops it afterwards.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

from bench_server import add_server_options, benchmark_server, peak_rss_mb, scratch_database

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.clients.databases import COURSE_ORDERS, extract_pages
from costudy_pipelines.sources.elective.client import ORDERS_LAYOUT, ElectiveReader


def elective_row(n: int) -> list[str]:
    day = f"2025-03-{1 + n % 28:02d} 10:00:00"
    money = [f"{100 + n % 50}.00", "12", "10.00", "3.10", "96.90"]
    return [day, f"Zoë Person {n}", "Typing Pro", "USD", *money, "Funding", "Approved",
            f"person{n}@example.com"]  # fmt: skip


def write_elective_csv(path: Path, rows: int) -> None:
    header = [*ORDERS_LAYOUT.columns.values(), "Email"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for n in range(rows):
            writer.writerow(elective_row(n))
    past = time.time() - 3600
    os.utime(path, (past, past))


def read_elective(folder: str) -> tuple[int, float]:
    reader = ElectiveReader(Path(folder))
    started = time.perf_counter()
    rows = sum(len(page) for page in reader.pages(reader.scan()))
    return rows, time.perf_counter() - started


ORDERS_SCHEMA = (
    "create table orders (id bigint primary key, user_email text, amount numeric(12, 2), "
    "currency text, status text, created_at timestamptz not null)",
    "create table order_items (id bigint primary key, order_id bigint, course_id int, "
    "price numeric(12, 2))",
    "create index on order_items (order_id)",
)
ORDERS_FILL = (
    "insert into orders select g, 'person' || g || '@example.com', 19.99, 'USD', 'paid', "
    "'2025-01-01'::timestamptz + g * interval '1 second' from generate_series(1, %(rows)s) g",
    "insert into order_items select g, g, mod(g, 40), 19.99 from generate_series(1, %(rows)s) g",
    "analyze orders",
    "analyze order_items",
)


def fill_orders(url: str, rows: int) -> None:
    engine = pg.make_engine(url, source="--server-url")
    with engine.begin() as conn:
        for statement in ORDERS_SCHEMA:
            conn.exec_driver_sql(statement)
        for statement in ORDERS_FILL:
            conn.exec_driver_sql(statement, {"rows": rows})
    engine.dispose()


def read_orders(url: str) -> tuple[int, float]:
    engine = pg.make_engine(url, source="--server-url")
    started = time.perf_counter()
    rows = sum(len(page) for page in extract_pages(engine, COURSE_ORDERS))
    engine.dispose()
    return rows, time.perf_counter() - started


def measured(stage, argument, results) -> None:  # runs in a child process
    rows, seconds = stage(argument)
    results.put({"rows": rows, "seconds": round(seconds, 2), "peak_rss_mb": peak_rss_mb()})


def run(name: str, stage, argument) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=measured, args=(stage, argument, results))
    child.start()
    result = results.get()
    child.join()
    result["rows_per_s"] = round(result["rows"] / result["seconds"]) if result["seconds"] else None
    print(json.dumps({"stage": name, **result}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    add_server_options(parser)
    args = parser.parse_args()
    sizes = sorted({min(100_000, args.rows), args.rows})
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            folder = Path(scratch) / str(size)
            folder.mkdir()
            write_elective_csv(folder / "orders.csv", size)
            run(f"elective_csv_{size}", read_elective, str(folder))
    with benchmark_server(args) as server_url:
        for size in sizes:
            with scratch_database(server_url, "bench_readers") as url:
                fill_orders(url, size)
                run(f"course_orders_with_items_{size}", read_orders, url)


if __name__ == "__main__":
    main()
