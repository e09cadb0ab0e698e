"""How fast the sandbox world is generated and dumped, and how much memory it needs.

    .venv/bin/python benchmarks/world_generation.py [--records 1000000] [--seed 1]

Prints one JSON object: records, records/s generating (every record of every source built
once), records/s dumping (JSONL + CSV files, without the fingerprint pass), seconds for the
fingerprint and for one advance_day, and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench_server import peak_rss_mb

from costudy_pipelines.sandbox.dump import dump_world
from costudy_pipelines.sandbox.world import World, WorldConfig


def timed(action):
    """(result, wall seconds, CPU seconds): on a shared machine the CPU time is the cost."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    return result, time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    config = WorldConfig.for_records(args.records, seed=args.seed)
    world, setup_s, _ = timed(lambda: World(config))
    total, generate_s, generate_cpu = timed(
        lambda: sum(1 for source in world.sources for _ in world.entries(source))
    )
    rss_after_generating = peak_rss_mb()
    folder = Path(tempfile.mkdtemp(prefix="costudy-world-"))
    try:
        manifest, dump_s, dump_cpu = timed(lambda: dump_world(world, folder, fingerprint=False))
        dump_bytes = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    finally:
        shutil.rmtree(folder)
    _, fingerprint_s, _ = timed(world.fingerprint)
    report, advance_s, _ = timed(world.advance_day)
    dumped = sum(manifest["records"].values())
    print(
        json.dumps(
            {
                "people": config.people,
                "records": total,
                "setup_s": round(setup_s, 2),
                "generate_s": round(generate_s, 2),
                "generate_records_per_s": round(total / generate_s),
                "generate_records_per_cpu_s": round(total / generate_cpu),
                "dump_s": round(dump_s, 2),
                "dump_records_per_s": round(dumped / dump_s),
                "dump_records_per_cpu_s": round(dumped / dump_cpu),
                "dump_mb": round(dump_bytes / 2**20, 1),
                "fingerprint_s": round(fingerprint_s, 2),
                "advance_day_s": round(advance_s, 2),
                "advance_day_changes": sum(
                    len(c.added) + len(c.changed) + len(c.deleted) for c in report.sources.values()
                ),
                "peak_rss_mb_after_generating": round(rss_after_generating, 1),
                "peak_rss_mb": round(peak_rss_mb(), 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
