"""Probable duplicates at scale: candidate precision, recall, time and peak memory of
lib/people/matching.py on a sandbox world of about --users users.

    .venv/bin/python benchmarks/people_matching.py --users 100000
    .venv/bin/python benchmarks/people_matching.py --users 1000000
    .venv/bin/python benchmarks/people_matching.py --users 20000 --mode sync \\
        --server-url postgresql://postgres@127.0.0.1:5432/postgres

Two ways to get the users (--mode):

synthetic  (default) the warehouse's user features computed from the world's people and
           population (sandbox/user_features.py: every family's address, name in the
           family's style, username, phone), written as the CSV the feature query would
           produce, then scored by matching.score_features_csv: everything find_candidates
           does after reading PostgreSQL. A full sync of a million-user world (about ten
           million records) would take far longer than the matching itself; this measures
           the matching.
sync       the world synced into a scratch warehouse through the load engine (the test
           helper costudy_pipelines_tests/lib/people/world_sync.py: seeded website, course and
           platform databases, API records, sheets, Elective rows), then find_candidates on
           it, PostgreSQL query included. Scratch databases are dropped afterwards.

The scoring runs in a child process of its own, so its peak RSS is the matching's alone
(the parent holds the world and the truth). Prints one JSON object: users, true pairs,
candidates, precision, recall (at --threshold, default matching.DEFAULT_THRESHOLD), seconds
(total scoring and per stage), peak RSS of the scoring in MB, the load average, and the
targets (1M users: <= 300 s, <= 2048 MB; precision >= 0.95, recall >= 0.9).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.people.matching import (
    DEFAULT_THRESHOLD,
    MatchRun,

    score_features_csv,
)
from costudy_pipelines.sandbox.user_features import world_users
from costudy_pipelines.sandbox.world import World, WorldConfig

USERS_PER_PERSON = 1.15  # a world of N people has about 1.15 N users (second addresses)
TARGET_SECONDS = 300
TARGET_RSS_MB = 2048
TARGET_PRECISION = 0.95
TARGET_RECALL = 0.9


def world_for(users: int, seed: int) -> World:
    return World(WorldConfig(seed=seed, people=max(2, round(users / USERS_PER_PERSON)), days=30))


def write_features(world: World, path: Path) -> set[tuple[str, str]]:
    """The world's users as FEATURES_SQL's CSV; returns the same-person pairs of user ids."""
    people: dict[int, list[str]] = defaultdict(list)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("id", "email", "name", "username", "phone"))
        for index, row in world_users(world):
            writer.writerow((row.id, row.email, row.name, row.username, row.phone))
            people[index].append(str(row.id))
    return {pair for ids in people.values() for pair in combinations(sorted(ids), 2)}


def score_child(args: argparse.Namespace) -> None:
    """In the child: score, write the candidate pairs to --pairs-out, print the run."""
    run = MatchRun()
    started = time.perf_counter()
    if args.features:
        found = score_features_csv(Path(args.features), threshold=args.threshold, run=run)
        candidates = list(found)
    else:
        with pg.connect(args.warehouse, source="--server-url") as conn:
            candidates = list(iter_candidates(conn, threshold=args.threshold, run=run))
    seconds = time.perf_counter() - started
    with open(args.pairs_out, "w", encoding="utf-8") as out:
        for candidate in candidates:
            out.write(f"{candidate.user_a}\t{candidate.user_b}\n")
    print(json.dumps({"users": run.users, "seconds": round(seconds, 2), "stages": run.seconds}))


def run_child(
    threshold: float, folder: Path, *, features: Path | None = None, warehouse: str | None = None
) -> tuple[dict[str, Any], set[tuple[str, ...]], float]:
    """(the child's figures, its candidate pairs, its peak RSS in MB)."""
    pairs_out = folder / "pairs.tsv"
    command = [sys.executable, __file__, "--score-child", "--threshold", str(threshold),
               "--pairs-out", str(pairs_out)]  # fmt: skip
    command += ["--features", str(features)] if features else ["--warehouse", str(warehouse)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    with pairs_out.open(encoding="utf-8") as lines:
        pairs = {tuple(sorted(line.rstrip("\n").split("\t"))) for line in lines}
    return figures, pairs, peak_mb


def synthetic(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    world = world_for(args.users, args.seed)
    started = time.perf_counter()
    features = folder / "features.csv"
    truth = write_features(world, features)
    prepared = time.perf_counter() - started
    figures, pairs, peak_mb = run_child(args.threshold, folder, features=features)
    return {**figures, "prepare_world_s": round(prepared, 1), "truth": truth, "pairs": pairs,
            "peak_rss_mb": round(peak_mb, 1)}  # fmt: skip


def synced(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from costudy_pipelines.lib.migrations import apply_pending
    from costudy_pipelines.lib.settings import PROJECT_ROOT
    from costudy_pipelines.sandbox.ground_truth import ground_truth
    from costudy_pipelines_tests.harness import DatabaseFactory
    from costudy_pipelines_tests.lib.people.world_sync import sync_world, user_emails

    world = world_for(args.users, args.seed)
    databases = DatabaseFactory(args.server_url)
    try:
        warehouse, platform = databases.create(), databases.create()
        apply_pending(warehouse, PROJECT_ROOT / "sql" / "warehouse")
        apply_pending(platform, PROJECT_ROOT / "sql" / "platform")
        started = time.perf_counter()
        sync_world(world, warehouse, platform=platform, new_database=databases.create)
        prepared = time.perf_counter() - started
        figures, pairs, peak_mb = run_child(args.threshold, folder, warehouse=warehouse)
        with pg.connect(warehouse, source="--server-url") as conn:
            emails = user_emails(conn)
    finally:
        databases.drop_all()
    ids = {email: user_id for user_id, email in emails.items()}
    truth = {
        tuple(sorted((ids[a], ids[b])))
        for a, b in ground_truth(world).same_person_pairs(emails.values())
    }
    return {**figures, "prepare_world_s": round(prepared, 1), "truth": truth, "pairs": pairs,
            "peak_rss_mb": round(peak_mb, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--mode", choices=("synthetic", "sync"), default="synthetic")
    parser.add_argument("--server-url", default=os.environ.get("COSTUDY_TEST_PG_URL", ""))
    parser.add_argument("--score-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--features", help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", help=argparse.SUPPRESS)
    parser.add_argument("--pairs-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.score_child:
        score_child(args)
        return
    if args.mode == "sync" and not args.server_url:
        parser.error("--mode sync needs --server-url (or COSTUDY_TEST_PG_URL)")
    with tempfile.TemporaryDirectory(prefix="people-matching-") as scratch:
        result = (synthetic if args.mode == "synthetic" else synced)(args, Path(scratch))
    truth, pairs = result.pop("truth"), result.pop("pairs")
    hits = len(truth & pairs)
    precision = hits / len(pairs) if pairs else 1.0
    recall = hits / len(truth) if truth else 1.0
    out = {
        "mode": args.mode,
        "users": result["users"],
        "threshold": args.threshold,
        "true_pairs": len(truth),
        "candidates": len(pairs),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "seconds": result["seconds"],
        "stages": result["stages"],
        "peak_rss_mb": result["peak_rss_mb"],
        "prepare_world_s": result["prepare_world_s"],
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "targets": {
            "precision": precision >= TARGET_PRECISION,
            "recall": recall >= TARGET_RECALL,
            "seconds_at_1m": TARGET_SECONDS,
            "seconds": result["seconds"] <= TARGET_SECONDS,
            "rss": result["peak_rss_mb"] <= TARGET_RSS_MB,
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
