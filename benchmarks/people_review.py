"""Benchmark of the review of probable duplicates at scale (lib/people/review.py and the
people / revenue_by_person views): storing a scoring's candidates, deciding on many pairs at
once, re-storing a scoring, and reading people and revenue per person over every user.

Builds, with SQL on the server (no Python rows): a warehouse (sql/warehouse migrations, the
people views) with N users and one paid Whop payment each. Candidates pair user n with n+1
for the first 2K users, some overlapping (accepting them makes chains: persons of several
users). Prints one JSON line per stage: wall seconds, CPU seconds of this process, peak RSS,
what was stored or found, and the machine's load average.

    .venv/bin/python benchmarks/people_review.py --users 1000000 --candidates 50000
    .venv/bin/python benchmarks/people_review.py --embedded      # the project's embedded server

Fresh databases are created on the server for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
from typing import Any
from uuid import UUID

from bench_server import (
    add_server_options,
    benchmark_server,
    scratch_database,
    timed,
)

from costudy_pipelines.lib.migrations import apply_pending
from costudy_pipelines.lib.people import people, review
from costudy_pipelines.lib.people.matching import MatchCandidate
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.lib.views import VIEWS_FOLDER, apply_view, read_view

VIEWS = ["revenue_lines", "revenue_by_user_day", "revenue_by_user", "people", "revenue_by_person"]
WAREHOUSE_SQL = """
insert into users (id, email, name, email_source, email_source_record, name_source)
select md5('u' || n)::uuid, 'person' || n || '@example.com', 'Person ' || (n / 2), 'whop',
       'whop_payments:' || n, 'whop'
from generate_series(1, %(users)s) as n;
insert into whop_payments (external_id, user_id, email, status, currency, amount, occurred_at,
                           paid_at, raw, content_hash)
select 'pay_' || n, md5('u' || n)::uuid, 'person' || n || '@example.com', 'paid', 'usd', 10,
       timestamptz '2024-01-01' + (n % 365) * interval '1 day',
       timestamptz '2024-01-01' + (n % 365) * interval '1 day', '{}', '\\x00'
from generate_series(1, %(users)s) as n;
analyze users;
analyze whop_payments;
"""


def user_id(n: int) -> UUID:
    """The id WAREHOUSE_SQL gave user n (md5('u' || n) as a uuid)."""
    return UUID(hashlib.md5(f"u{n}".encode()).hexdigest())


def build(warehouse: str, users: int) -> dict[str, Any]:
    apply_pending(warehouse, PROJECT_ROOT / "sql" / "warehouse")
    with connect(warehouse, source="warehouse", autocommit=True) as conn:
        conn.execute(WAREHOUSE_SQL.replace("%(users)s", str(users)))
        for name in VIEWS:
            apply_view(conn, read_view(VIEWS_FOLDER / f"{name}.sql"))
    return {"users": users}


def scoring(count: int) -> list[MatchCandidate]:
    """user n ~ user n+1 for odd n, and n+1 ~ n+2 for every second odd n: chains."""
    pairs = [(n, n + 1) for n in range(1, 2 * count, 2)][: count * 3 // 4]
    pairs += [(n + 1, n + 2) for n in range(1, 8 * count, 4)][: count - len(pairs)]
    found = []
    for a, b in sorted(pairs):
        first, second = sorted((user_id(a), user_id(b)))
        found.append(MatchCandidate(first, second, 0.5 + (a % 50) / 100, ("name",), ("email",)))
    return found


def store(warehouse: str, candidates: list[MatchCandidate]) -> dict[str, Any]:
    with connect(warehouse, source="warehouse") as conn:
        stored = review.store_candidates(conn, candidates)
    return {"candidates": stored.scored, "removed": stored.removed, "pending": stored.pending}


def decide(warehouse: str, candidates: list[MatchCandidate], share: float) -> dict[str, Any]:
    chosen = [(c.user_a, c.user_b) for c in candidates[: int(len(candidates) * share)]]
    with connect(warehouse, source="warehouse") as conn:
        accepted = review.decide(conn, chosen, "accepted", by="bench", why="benchmark")
        rest = [(c.user_a, c.user_b) for c in candidates[len(chosen) :][: len(chosen)]]
        rejected = review.decide(conn, rest, "rejected", by="bench", why="benchmark")
    return {"accepted": len(accepted), "rejected": len(rejected)}


def read_people(warehouse: str) -> dict[str, Any]:
    with connect(warehouse, source="warehouse") as conn:
        found = people.summary(conn)
        two = people.users_in_two_persons(conn).count
        split = people.split_links(conn).count
    return {
        "persons": found["persons"],
        "users_in_multi_user_persons": found["users_in_multi_user_persons"],
        "largest_person_users": found["largest_person_users"],
        "users_in_two_persons": two,
        "split_links": split,
    }


REVENUE = {
    "revenue_by_person": "select count(*), sum(net) from revenue_by_person",
    "revenue_by_user": "select count(*), sum(net) from revenue_by_user",  # the baseline
}


def read_revenue(warehouse: str, view: str) -> dict[str, Any]:
    with connect(warehouse, source="warehouse") as conn:
        row = conn.execute(REVENUE[view]).fetchone()
    assert row is not None
    return {"rows": row[0], "net": float(row[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--candidates", type=int, default=50_000)
    parser.add_argument("--accept-share", type=float, default=0.4)
    add_server_options(parser)
    args = parser.parse_args()
    candidates = scoring(args.candidates)
    with (
        benchmark_server(args) as admin_url,
        scratch_database(admin_url, "bench_people") as warehouse,
    ):
        timed("build", lambda: build(warehouse, args.users))
        timed("store_candidates", lambda: store(warehouse, candidates))
        timed("decide", lambda: decide(warehouse, candidates, args.accept_share))
        timed("store_again", lambda: store(warehouse, candidates[: len(candidates) // 2]))
        timed("people", lambda: read_people(warehouse))
        for view in REVENUE:
            timed(view, lambda view=view: read_revenue(warehouse, view))


if __name__ == "__main__":
    main()
