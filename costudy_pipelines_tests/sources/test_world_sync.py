"""Every source asset against the running sandbox and a real warehouse, compared with the
world's own ground truth: the first sync, a re-run, and a day that adds, changes and deletes.

One story in one test: each step starts from the state the previous one left, which is what
it is about (a re-run of a synced warehouse, a new day after a re-run), and the sandbox and
the first sync are paid once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from costudy_pipelines.sandbox.generators import SPEC_BY_NAME
from costudy_pipelines.sandbox.people import normalise_email
from costudy_pipelines.sandbox.world import World
from costudy_pipelines.sources.registry import load_registry
from costudy_pipelines.sources.whop.records import RESOLVED_KEY
from costudy_pipelines_tests.sources.runs import SOURCES_AND_USERS, Run, run_assets
from costudy_pipelines_tests.sources.support import Sandbox
from costudy_pipelines_tests.sources.world_warehouse import (
    NO_EMAIL_COLUMN_REASON,
    REASON_WORDS,
    SYNCED,
    TARGETS,
    Expected,
    Stored,
    expected,
    expected_changes,
    fingerprint,
    stored,
    stored_changes,
    warehouse_key,
    written_by_run,
)

# Sources synced whole (no day partitions): one materialization per run.
FULL_SYNC_ASSETS = {"elective_rows", "sheet_payments_ledger", "sheet_upsells_q1",
                    "sheet_workshop_signups"}  # fmt: skip
# The Elective export without an email column is a sixth of its rows (the world's design):
# they are rejected with a reason, so the reject-rate warning is expected there.
EXPECTED_WARNINGS = {"elective_rows:reject_rate"}
# Timestamps of database rows are compared elsewhere (they come back as datetimes).
TIME_FIELDS = ("created_at", "updated_at", "completed_at", "valid_until")


@pytest.mark.slow
def test_sources_sync_the_world_then_rerun_idempotently_then_follow_a_new_day(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sandbox.warehouse_url
    world = sandbox.world()
    truth = expected(world)

    # 1. The first sync: every source, every day, in one run (a single-run backfill).
    first = run_assets(sandbox.first_day, sandbox.last_day)
    assert first.success, first.failures
    assert_every_partition_materialized(first, sandbox)
    assert not first.failed_checks("ERROR"), "blocking checks failed"
    assert first.failed_checks("WARN") <= EXPECTED_WARNINGS
    assert_api_counters_reported(first, world)
    synced = stored(url)
    assert_matches(synced, truth)
    assert_malformed_records_rejected_with_reasons(synced, truth)
    assert_text_round_trips(synced, world)
    assert_email_spellings_are_one_user(url, world, truth)

    # 2. A re-run of the same days: the same tables, not one row written.
    before = fingerprint(url)
    rerun = run_assets(sandbox.first_day, sandbox.last_day, SOURCES_AND_USERS.without_checks())
    assert rerun.success, rerun.failures
    assert fingerprint(url) == before
    assert set(written_by_run(url, rerun.run_id).values()) == {(0, 0, 0)}

    # 3. A new day at every source; one run re-syncs every day (records of earlier days were
    # changed and deleted too): exactly the world's adds, changes and soft-deletes.
    report = sandbox.advance_day(monkeypatch)
    worlds = (world, sandbox.world())
    truth_after = expected(worlds[1])
    resync = run_assets(sandbox.first_day, sandbox.last_day, SOURCES_AND_USERS.without_checks())
    assert resync.success, resync.failures
    assert resync.materialized["whop_payments"] >= {sandbox.last_day.isoformat()}
    assert refused_deletes(url, resync.run_id) == [], "a normal day trips no delete guard"
    after = stored(url)
    wanted = expected_changes(truth, truth_after, report, worlds)
    assert stored_changes(synced, after) == wanted
    written = written_by_run(url, resync.run_id)
    assert {source: written[source] for source in SYNCED} == {
        source: changes.counts() for source, changes in wanted.items()
    }
    assert sum(len(changes.deleted) for changes in wanted.values()) > 0, "a day deletes records"
    assert_matches(after, truth_after, previous=truth)


def assert_every_partition_materialized(run: Run, sandbox: Sandbox) -> None:
    days = {
        (sandbox.first_day + timedelta(days=offset)).isoformat()
        for offset in range((sandbox.last_day - sandbox.first_day).days + 1)
    }
    for key in [dg.AssetKey(feed.asset) for _, feed in load_registry().feeds()]:
        name = key.to_user_string()
        wanted = {None} if name in FULL_SYNC_ASSETS else days
        assert run.materialized[name] == wanted, name
    assert run.materialized["users"] == {None}


def assert_api_counters_reported(run: Run, world: World) -> None:
    """What the API clients did on the wire is the run's (its observation without a
    partition), never a day's materialization."""
    whop = run.run_figures("whop_payments")
    assert whop["requests"] > 0 and whop["run_partitions"] > 0
    ghl = run.run_figures("ghl_contacts")
    assert ghl["locations"] == world.config.ghl_locations
    assert ghl["api_requests"] >= ghl["locations"]
    for asset in ("whop_payments", "ghl_contacts"):
        assert run.metadata[asset]["records_in"] >= 0
        assert not {"requests", "api_requests", "run_partitions"} & set(run.metadata[asset])


def assert_matches(found: Stored, truth: Expected, previous: Expected | None = None) -> None:
    """Live keys per source, rejects with their reasons, users and winning names.

    After a new day (`previous` given) the warehouse also keeps what the day took away from
    the world but not from the warehouse: users whose records were all deleted (users are
    never deleted) and rejects of malformed records that were deleted at the source.
    """
    for source in SYNCED:
        assert_same(found.live_keys(source), truth.keys[source], f"{source}: live rows")
        rejects = {**(previous.rejects[source] if previous else {}), **truth.rejects[source]}
        stale_unattributed = previous.unattributed[source] if previous else set()
        wanted = {key for key in rejects if key not in truth.keys[source]}
        wanted |= truth.unattributed[source] | stale_unattributed
        assert_same(set(found.rejects[source]), wanted, f"{source}: unresolved rejects")
    users = truth.users | (previous.users if previous else set())
    assert_same(set(found.users), users, "users (emails)")
    names = {email: found.users[email] for email in truth.names}
    wrong = {
        email: (names[email], want) for email, want in truth.names.items() if names[email] != want
    }
    assert not wrong, f"{len(wrong)} users' (name, source) differ (found, wanted): {sample(wrong)}"


def sample(items: Iterable[Any], most: int = 5) -> str:
    shown = sorted(items, key=repr)
    return repr(shown[:most]) + (f" and {len(shown) - most} more" if len(shown) > most else "")


def assert_same(found: set[Any], wanted: set[Any], what: str) -> None:
    """`found == wanted`, or a message that says what is missing and what is extra."""
    missing, extra = wanted - found, found - wanted
    assert not missing and not extra, (
        f"{what}: {len(found)} found, {len(wanted)} wanted; missing {len(missing)}: "
        f"{sample(missing)}; not wanted {len(extra)}: {sample(extra)}"
    )


def assert_malformed_records_rejected_with_reasons(found: Stored, truth: Expected) -> None:
    kinds = set()
    for source in SYNCED:
        for key, kind in truth.rejects[source].items():
            reason = found.rejects[source][key]
            assert any(word in reason for word in REASON_WORDS[kind]), (source, key, reason)
            kinds.add(kind)
        for key in truth.unattributed[source]:  # from the export without an email column
            assert NO_EMAIL_COLUMN_REASON in found.rejects[source][key], (source, key)
    assert kinds == set(REASON_WORDS), "the world malformed records of every kind"


def assert_text_round_trips(found: Stored, world: World) -> None:
    """Names, messages and company names with Unicode, quotes, backslashes and SQL come back
    exactly as the source held them: whole API records, every text field of database rows,
    every cell of sheets and exports (their keys are their cells)."""
    texts: list[str] = []
    for source in SYNCED:
        if source in ("sheet_rows", "elective_rows"):
            continue  # compared cell by cell through their keys in assert_matches
        rows = found.rows[source]
        for entry in world.entries(source):
            if entry.reject:
                continue
            key = warehouse_key(source, entry.key)
            raw = rows[key].raw
            if TARGETS[source].table in ("whop_users", "whop_memberships", "whop_payments",
                                         "ghl_contacts"):  # fmt: skip
                # memberships and users also keep the address the client looked up for them
                resolved = raw.pop(RESOLVED_KEY, None)
                assert raw == entry.record, (source, key)
                if source in ("whop_memberships", "whop_users"):
                    email = normalise_email(resolved["member_email"])
                    assert email == world.address(entry.person, "whop"), (source, key)
                continue
            for name, value in entry.record.items():
                if isinstance(value, str) and name not in TIME_FIELDS:
                    assert raw[name] == value, (source, key, name)
                    texts.append(value)
    joined = "\n".join(texts)
    assert "DROP TABLE" in joined and "'" in joined and "\\" in joined
    assert any(ord(character) > 0xFFFF for character in joined), "emoji (astral plane)"


def assert_email_spellings_are_one_user(url: str, world: World, truth: Expected) -> None:
    """The same person writes their email in several cases and with stray whitespace across
    sources: one user, and every source row of theirs points at it."""
    spellings: dict[str, set[str]] = defaultdict(set)
    for source in SYNCED:
        email_of = SPEC_BY_NAME[source].email
        for entry in world.entries(source):
            raw = email_of(entry.record) if email_of else None
            if not entry.reject and isinstance(raw, str):
                spellings[normalise_email(raw)].add(raw)
    varied = {email for email, raws in spellings.items() if len(raws) > 1}
    assert len(varied) > 10, "the world spells emails in several ways"
    tables = sorted({target.table for target in TARGETS.values()})
    union = sql.SQL(" union all ").join(
        sql.SQL("select email, user_id from {}").format(sql.Identifier(table)) for table in tables
    )
    owners_query = sql.SQL(
        "select r.email, count(distinct r.user_id) from ({}) r"
        " join users u on u.id = r.user_id and u.email = r.email group by r.email"
    ).format(union)
    with psycopg.connect(url) as conn:
        owners = dict(conn.execute(owners_query).fetchall())
        users = dict(conn.execute("select email, count(*) from users group by email").fetchall())
    assert {email: owners.get(email) for email in varied} == dict.fromkeys(varied, 1)
    assert {email: users.get(email) for email in varied} == dict.fromkeys(varied, 1)
    assert varied <= truth.users


def refused_deletes(url: str, run_id: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select details->>'soft_delete_refused' from sync_log where run_id = %s"
            " and details->>'soft_delete_refused' is not null",
            (run_id,),
        )
        return [row[0] for row in rows]
