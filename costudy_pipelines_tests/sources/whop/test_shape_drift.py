"""Shape drift, through the product's own Whop assets and checks (one Dagster run over the
world's days, the sandbox's Whop on 127.0.0.1, a migrated warehouse): a world whose API
changes its payment shape mid-run (a field renamed, a number becoming a Money object, a field
gone) fires `whop_payments:shape_drift` on each change, with the partition it started in and
an example record, and never stops the sync; the same world unchanged keeps every check quiet,
on a first run and on a re-run that compares with what the first one saw."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from costudy_pipelines.defs._api_sources import ApiConnection
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.defs.sync_health import drift_markdown
from costudy_pipelines.lib.loading.drift import DriftSeen, drift_history
from costudy_pipelines.sandbox.generators.whop import members
from costudy_pipelines.sandbox.servers import WhopServer
from costudy_pipelines.sandbox.shape_changes import ShapeChange
from costudy_pipelines.sandbox.world import World, WorldConfig
from costudy_pipelines_tests.replay.support import costudy, use_databases
from costudy_pipelines_tests.sources.runs import Run, run_assets

# Floats for money: the older release's shape, which the payments feed still reads; the
# change below moves usd_total to the Money object of the pinned release.
WORLD = World(
    WorldConfig(seed=23, people=160, start=date(2024, 1, 1), days=8, money_format="float")
)
FIRST, LAST = WORLD.config.start, WORLD.config.start + timedelta(days=WORLD.config.days - 1)
CHANGED_ON = "2024-01-05"
CHANGE = ShapeChange(
    since=f"{CHANGED_ON}T00:00:00Z",
    renamed={"customer_email": "payer_email"},
    to_money=("usd_total",),
    dropped=("membership_id",),
)
FEEDS = ("whop_payments", "whop_memberships", "whop_users")
SELECTION = dg.AssetSelection.assets(*FEEDS)
KEY = "drift-" + str(WORLD.config.seed)  # not a secret: the sandbox checks what it is given


@contextmanager
def whop(change: ShapeChange | None) -> Iterator[WhopServer]:
    payments = list(WORLD.records("whop_payments"))
    with WhopServer(
        api_key=KEY,
        payments=change.apply(payments) if change else payments,
        memberships=list(WORLD.records("whop_memberships")),
        users=list(WORLD.records("whop_users")),
        members=members(WORLD),
    ) as server:
        yield server


def sync(server: WhopServer, warehouse_url: str) -> Run:
    resources = {
        "whop": ApiConnection(settings={"api_key": KEY, "base_url": f"{server.base_url}/api/v1"}),
        "warehouse_db": PostgresResource(url=warehouse_url, env_var="WAREHOUSE_DB_URL"),
    }
    with dg.instance_for_test() as instance:
        run = run_assets(FIRST, LAST, SELECTION, resources=resources, instance=instance)
    assert run.success, run.failures
    return run


def history(warehouse_url: str, run_id: str | None = None) -> list[DriftSeen]:
    with psycopg.connect(warehouse_url) as conn:
        return drift_history(conn, sources=FEEDS, run_id=run_id)


@pytest.mark.slow
def test_each_planted_change_is_reported_from_its_first_partition(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = {p["id"] for p in CHANGE.apply(WORLD.records("whop_payments")) if "payer_email" in p}
    assert changed, "the world has payments on and after the change"
    with whop(CHANGE) as server:
        run = sync(server, warehouse_url)

    # WARN, never blocking: every partition synced, the other feeds quiet
    assert run.checks["whop_payments:shape_drift"] == (False, "WARN")
    assert run.checks["whop_memberships:shape_drift"] == (True, "WARN")
    assert run.checks["whop_users:shape_drift"] == (True, "WARN")
    assert run.materialized["whop_payments"] == {
        (FIRST + timedelta(days=n)).isoformat() for n in range(WORLD.config.days)
    }
    found = {(item.field, item.kind): item for item in history(warehouse_url, run.run_id)}
    assert set(found) == {
        ("customer_email", "disappeared"),  # renamed: the name read is gone...
        ("payer_email", "appeared"),  # ...and a new one came
        ("usd_total", "changed_type"),  # a number became a Money object
        ("membership_id", "disappeared"),  # a field gone
    }
    for item in found.values():
        assert item.source == "whop_payments"
        assert item.first_partition == CHANGED_ON, item
        assert item.example_id in changed, item
    assert found["usd_total", "changed_type"].expected == ("number",)
    assert found["usd_total", "changed_type"].found == ("object",)
    assert found["customer_email", "disappeared"].declared  # the feed reads it
    assert not found["payer_email", "appeared"].declared
    # a declared field gone stays reported on every partition after the change
    days_after = (LAST - date.fromisoformat(CHANGED_ON)).days + 1
    assert found["customer_email", "disappeared"].partitions == days_after
    assert found["customer_email", "disappeared"].records == len(changed)
    assert "first in partition 2024-01-05" in found["usd_total", "changed_type"].describe()
    # the sync health report lists the history below its table
    report = drift_markdown(history(warehouse_url))
    assert "**Shape drift** (4 change(s)" in report
    assert "whop_payments: payer_email appeared as string" in report
    # and the operator's command line shows the same history
    use_databases(monkeypatch, tmp_path, WAREHOUSE_DB_URL=warehouse_url)
    listed = costudy("sources", "drift", "--source", "whop")
    assert listed.exit_code == 0, listed.output
    assert "4 shape change(s) in feeds that declare their shape" in listed.output
    assert "whop_payments: usd_total changed type: object where number was expected" in (
        listed.output
    )
    rows = [json.loads(line) for line in costudy("sources", "drift", "--json").output.splitlines()
            if line.startswith("{")]  # fmt: skip
    assert {(row["field"], row["first_partition"]) for row in rows} == {
        (field, CHANGED_ON) for field, _ in found
    }


@pytest.mark.slow
def test_an_unchanged_world_is_quiet_on_a_first_run_and_a_rerun(warehouse_url: str) -> None:
    with whop(None) as server:
        first = sync(server, warehouse_url)
        again = sync(server, warehouse_url)  # compared with what the first run saw
    for run in (first, again):
        for feed in FEEDS:
            assert run.checks[f"{feed}:shape_drift"] == (True, "WARN"), (feed, run.run_id)
    assert history(warehouse_url) == []
    with psycopg.connect(warehouse_url) as conn:
        recorded = conn.execute(
            "select count(*) from sync_log where run_id = %s and details ? 'shape'",
            (again.run_id,),
        ).fetchone()
    assert recorded is not None and recorded[0] == len(FEEDS) * WORLD.config.days
