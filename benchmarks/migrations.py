"""How long the migration runner takes per file, and what status, drift and backup cost.

Prints one JSON line per stage:
- third_party: the vendored helpdesk folder (31 files; plpgsql, enums, CONCURRENTLY, DO);
- generated_N: N generated files (a table, an index and a function each): the runner's
  per-file overhead (plan, transaction, record, history, session reset) on top of the SQL;
- reapply_noop: the same N files again, nothing pending (what every deploy pays);
- status_catalog: reading the live catalog of the N-file database (one query);
- drift: comparing two such catalogs after a manual change;
- backup: pg_dump of the N-file database (what a production apply pays first).

    .venv/bin/python benchmarks/migrations.py                 # N = 200
    .venv/bin/python benchmarks/migrations.py --files 500 \\
        --server-url postgresql://postgres@127.0.0.1:5432/postgres

Scratch databases are created on the server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _checkout  # noqa: F401  (the checkout on sys.path: the tests' helpers)
from bench_server import add_server_options, benchmark_server, scratch_database

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.migrations import Target, apply, backup, discover, inspect
from costudy_pipelines.lib.migrations.promotion import drift_across

THIRD_PARTY = (
    Path(__file__).resolve().parents[1]
    / "costudy_pipelines_tests/lib/migrations/fixtures/third_party"
)
NEEDS_NO_TRANSACTION = ("018-status-index.sql", "022-backfill-priority.sql")

GENERATED = """
create table item_{n} (id bigint generated always as identity primary key, name text not null,
                       created_at timestamptz not null default now());
create index item_{n}_created on item_{n} (created_at);
create function item_{n}_count() returns bigint language plpgsql stable as $$
begin
    return (select count(*) from item_{n});  -- a body with ; inside
end;
$$;
"""


def report(stage: str, seconds: float, **fields: object) -> None:
    print(json.dumps({"stage": stage, "seconds": round(seconds, 3), **fields}), flush=True)


def timed(action: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def third_party_folder(scratch: Path) -> Path:
    folder = scratch / "helpdesk"
    folder.mkdir()
    for path in sorted(THIRD_PARTY.glob("*.sql")):
        marker = "-- costudy:no-transaction\n" if path.name in NEEDS_NO_TRANSACTION else ""
        (folder / path.name).write_text(marker + path.read_text())
    return folder


def generated_folder(scratch: Path, files: int) -> Path:
    folder = scratch / "generated"
    folder.mkdir()
    for n in range(1, files + 1):
        (folder / f"{n:04d}-item-{n}.sql").write_text(GENERATED.format(n=n))
    return folder


def per_file(applied: tuple) -> dict[str, float]:
    times = [file.execution_ms for file in applied]
    return {"files": len(times), "median_file_ms": statistics.median(times) if times else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    add_server_options(parser)
    args = parser.parse_args()
    with benchmark_server(args) as server_url, tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        with scratch_database(server_url, "bench_migrations") as url:
            migrations = discover(third_party_folder(scratch))
            result, seconds = timed(lambda: apply(Target("helpdesk", "bench", url), migrations))
            report("third_party", seconds, **per_file(result.applied))

        generated = discover(generated_folder(scratch, args.files))
        with (
            scratch_database(server_url, "bench_migrations") as dev,
            scratch_database(server_url, "bench_migrations") as prod,
        ):
            dev_target, prod_target = Target("gen", "dev", dev), Target("gen", "prod", prod)
            result, seconds = timed(lambda: apply(dev_target, generated))
            report(f"generated_{args.files}", seconds, **per_file(result.applied))
            _, seconds = timed(lambda: apply(dev_target, generated))
            report("reapply_noop", seconds, files=args.files)
            status, seconds = timed(lambda: inspect(dev_target, generated))
            report("status_catalog", seconds, catalog_objects=len(status.catalog or {}))

            apply(prod_target, generated)
            with pg.admin_connection(prod, source="bench") as conn:
                conn.execute("alter table item_1 add column hotfix int")
            statuses = [inspect(dev_target, generated), inspect(prod_target, generated)]
            drift, seconds = timed(lambda: drift_across(statuses))
            report("drift", seconds, differences=len(drift))

            major = int(pg.check_connection(dev, source="bench").split(".")[0])
            path, seconds = timed(
                lambda: backup.backup(
                    dev_target, scratch / "backups", server_major=major, version=1
                )
            )
            report("backup", seconds, bytes=Path(path).stat().st_size)


if __name__ == "__main__":
    main()
