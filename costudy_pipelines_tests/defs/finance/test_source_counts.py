"""counts_match_source: warehouse rows per synced day against the source database itself
(course orders by day partition, platform users by full sync) and against the count an API
reported in the source asset's materialization metadata (Whop through a stand-in, GoHighLevel
through the product's own asset against the sandbox server).

No `from __future__ import annotations` here: the stand-in asset annotates `context`, which
Dagster refuses as a string.
"""

import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import dagster as dg
import pytest

from costudy_pipelines.defs._api_sources import ApiConnection, api_asset
from costudy_pipelines.defs._feed_check import evaluate_checks
from costudy_pipelines.defs._source_counts import MISSING_COUNT, REPORTED_COUNT, api_count_check
from costudy_pipelines.lib.clients.base import parse_timestamp
from costudy_pipelines.lib.loading import sync_session
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.sandbox.servers import GoHighLevelServer
from costudy_pipelines.sandbox.world import World
from costudy_pipelines.sources.course.client import COURSE_ORDERS
from costudy_pipelines.sources.course.spec import course_orders as spec_course_orders
from costudy_pipelines.sources.registry import load_registry
from costudy_pipelines.sources.whop.spec import whop_payments as spec_whop_payments
from costudy_pipelines_tests.defs.finance.loading import (
    by_created_day,
    database_rows,
    day_of,
    whop_payments_by_day,
)
from costudy_pipelines_tests.defs.finance.support import (
    COUNT_CHECKED,
    evaluations,
    metadata_value,
    run,
)
from costudy_pipelines_tests.registered import registered

CHECK = "counts_match_source"
PAYMENTS = registered(spec_whop_payments())


def count_checked(asset: str) -> dg.AssetsDefinition:
    return next(a for a in COUNT_CHECKED if dg.AssetKey(asset) in a.keys)


def evaluate(dbs, instance, asset: str) -> dg.AssetCheckEvaluation:
    """The feed's count comparison alone: its asset's op, neither syncing nor running the
    feed's other checks."""
    only_counts = dg.AssetSelection.checks(dg.AssetCheckKey(dg.AssetKey(asset), CHECK))
    checked = count_checked(asset)
    # an API source's connection is required by the op, never opened by its checks
    required = checked.required_resource_keys - {"io_manager"}
    unopened = {key: ApiConnection(settings={}) for key in required - set(dbs.resources(required))}
    result = run(dbs, instance, [checked], only_counts, resources=unopened)
    assert not result.get_asset_materialization_events()
    found = evaluations(result)
    assert set(found) == {(asset, CHECK)}
    return found[asset, CHECK]


def test_course_orders_agree_per_day_then_warn_with_the_ids_missing_on_each_side(dbs, instance):
    clean = evaluate(dbs, instance, "course_orders")
    assert clean.passed, clean.metadata
    assert metadata_value(clean, "days_compared") == 20  # one partition per day of the world
    assert metadata_value(clean, "source_total") == metadata_value(clean, "warehouse_total") > 0

    with connect(dbs.warehouse, source="WAREHOUSE_DB_URL", autocommit=True) as warehouse:
        stored = warehouse.execute(
            "select max(external_id::bigint) from course_orders where deleted_at is null"
        ).fetchone()[0]
    with connect(dbs.course, source="COURSE_DB_URL", autocommit=True) as course:
        # an order the warehouse never saw (on a synced day), and one gone at the source
        added = course.execute(
            "insert into orders (user_email, user_name, amount, currency, status, created_at)"
            " select user_email, user_name, amount, currency, status, created_at from orders"
            " order by id limit 1 returning id"
        ).fetchone()[0]
        course.execute("delete from orders where id = %s", (stored,))

    found = evaluate(dbs, instance, "course_orders")
    assert not found.passed
    assert found.severity == dg.AssetCheckSeverity.WARN
    assert metadata_value(found, "missing_in_warehouse") == 1
    assert metadata_value(found, "missing_in_warehouse_sample") == str(added)
    assert metadata_value(found, "missing_in_source") == 1
    assert metadata_value(found, "missing_in_source_sample") == str(stored)
    # the first order's day has one more at the source, the last stored order's day one fewer
    days = metadata_value(found, "differing_days").records
    assert sorted(row.data["difference"] for row in days) == [-1, 1]


def resync_day(dbs, day: str) -> None:
    """Sync one day of course orders again, as the daily partition would."""
    rows = by_created_day(database_rows(dbs.course, COURSE_ORDERS, "COURSE_DB_URL"))[day]
    sync_session(dbs.warehouse, registered(spec_course_orders()), rows, partition=day)


def test_a_rejected_order_is_accounted_for_and_a_stored_one_counts_once(dbs, instance):
    with connect(dbs.course, source="COURSE_DB_URL", autocommit=True) as course:
        # a new order whose email cannot be read, and a stored order whose email broke since
        new_day, broken_day = course.execute(
            "with new as (insert into orders (user_email, amount, currency, status, created_at)"
            " select 'not an email', amount, currency, status, created_at from orders"
            " order by id limit 1 returning created_at),"
            " broken as (update orders set user_email = 'broken@@example.com'"
            " where id = (select max(id) from orders) returning created_at)"
            " select (select created_at from new), (select created_at from broken)"
        ).fetchone()
    for moment in (new_day, broken_day):
        resync_day(dbs, day_of(moment))
    found = evaluate(dbs, instance, "course_orders")
    assert found.passed, found.metadata
    assert metadata_value(found, "rejected_total") == 1  # the broken one is still stored
    assert metadata_value(found, "missing_in_warehouse") == 0


def test_platform_users_after_a_full_sync_compare_every_day(dbs, instance):
    clean = evaluate(dbs, instance, "platform_users")
    assert clean.passed, clean.metadata
    assert metadata_value(clean, "days_compared") >= 15
    with connect(dbs.platform, source="PLATFORM_DB_URL", autocommit=True) as platform:
        platform.execute(
            "insert into users (email, name, created_at) values ('late.joiner@example.com',"
            " 'Late Joiner', (select max(created_at) from users))"
        )
    found = evaluate(dbs, instance, "platform_users")
    assert not found.passed
    assert metadata_value(found, "missing_in_warehouse") == 1
    assert metadata_value(found, "days_differing") == 1


def reported_count_check() -> dg.AssetChecksDefinition:
    """The check a feed declaring ReportedCount carries (GoHighLevel's, here on a stand-in)."""
    key = dg.AssetKey("whop_payments")
    check = api_count_check(key, registered(spec_whop_payments()))

    @dg.multi_asset_check(specs=[check.spec], required_resource_keys={"warehouse_db"})
    def counts(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        yield from evaluate_checks(context, key, [check])

    return counts


def whop_stand_in(world, *, report: bool = True) -> dg.AssetsDefinition:
    """What the Whop source asset promises: a daily partition synced through the load engine,
    with the count the API reported under `source_reported_count`."""
    days = whop_payments_by_day(world)
    partitions = dg.DailyPartitionsDefinition(start_date=min(days), end_date=max(days))

    @dg.asset(
        key="whop_payments", partitions_def=partitions, required_resource_keys={"warehouse_db"}
    )
    def whop_payments(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        records = days[context.partition_key]
        resource = context.resources.warehouse_db
        sync_session(resource.url, PAYMENTS, records, partition=context.partition_key)
        return dg.MaterializeResult(metadata={REPORTED_COUNT: len(records)} if report else {})

    return whop_payments


SYNCED_DAYS = ("2024-01-03", "2024-01-04", "2024-01-05")


def test_whop_counts_agree_with_what_the_api_reported_then_warn_on_a_lost_row(dbs, instance, world):
    stand_in = whop_stand_in(world)
    for day in SYNCED_DAYS:
        run(dbs, instance, [stand_in], partition_key=day)
    check = reported_count_check()
    only_check = dg.AssetSelection.checks(check)
    clean = evaluations(run(dbs, instance, [stand_in, check], selection=only_check))
    assert clean["whop_payments", CHECK].passed, clean["whop_payments", CHECK].metadata
    assert metadata_value(clean["whop_payments", CHECK], "days_compared") == len(SYNCED_DAYS)

    with connect(dbs.warehouse, source="WAREHOUSE_DB_URL", autocommit=True) as warehouse:
        warehouse.execute(
            "update whop_payments set deleted_at = now() where id = (select min(id)"
            " from whop_payments where (occurred_at at time zone 'UTC')::date = %s)",
            (SYNCED_DAYS[1],),
        )
    found = evaluations(run(dbs, instance, [stand_in, check], selection=only_check))
    evaluation = found["whop_payments", CHECK]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    [day] = metadata_value(evaluation, "differing_days").records
    assert day.data["day"] == SYNCED_DAYS[1]
    assert day.data["difference"] == -1


def test_an_api_that_reports_no_counts_warns_that_nothing_was_compared(dbs, instance, world):
    stand_in = whop_stand_in(world, report=False)
    run(dbs, instance, [stand_in], partition_key=SYNCED_DAYS[0])
    check = reported_count_check()
    found = evaluations(
        run(dbs, instance, [stand_in, check], selection=dg.AssetSelection.checks(check))
    )
    evaluation = found["whop_payments", CHECK]
    assert not evaluation.passed, "nothing compared is not agreement"
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert REPORTED_COUNT in metadata_value(evaluation, "skipped")


def test_days_without_a_count_among_days_with_one_warn(dbs, instance, world):
    run(dbs, instance, [whop_stand_in(world, report=True)], partition_key=SYNCED_DAYS[0])
    silent = whop_stand_in(world, report=False)
    run(dbs, instance, [silent], partition_key=SYNCED_DAYS[1])
    check = reported_count_check()
    found = evaluations(
        run(dbs, instance, [silent, check], selection=dg.AssetSelection.checks(check))
    )
    evaluation = found["whop_payments", CHECK]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert metadata_value(evaluation, "partitions_without_count") == 1
    assert REPORTED_COUNT in metadata_value(evaluation, "problem")


@contextmanager
def ghl_sandbox(world: World, **options: Any) -> Iterator[ApiConnection]:
    """The sandbox GoHighLevel server serving the world's contacts (made as awkward as
    `options` say), and the product's resource pointed at it."""
    token = secrets.token_urlsafe(16)
    contacts = list(world.records("ghl_contacts"))
    locations = world.ghl_locations
    with GoHighLevelServer(
        token=token, contacts=contacts, location_ids=locations, **options
    ) as server:
        settings = {
            "token": token,
            "location_ids": ",".join(locations),
            "base_url": server.base_url,
        }
        yield ApiConnection(settings=settings)


@pytest.fixture
def ghl(world: World) -> Iterator[ApiConnection]:
    with ghl_sandbox(world) as resource:
        yield resource


def sync_ghl(dbs, instance, ghl: ApiConnection, world: World) -> dg.ExecuteInProcessResult:
    """The product's ghl_contacts asset over every day of the world in one run (a single-run
    backfill, as `costudy demo` runs it)."""
    last = world.config.start + timedelta(days=world.config.days - 1)
    source = load_registry().source("ghl")
    ghl_contacts = api_asset(source, source.feeds[0])
    job = dg.Definitions(
        assets=[ghl_contacts],
        resources={**dbs.resources({"warehouse_db"}), "ghl": ghl},
        jobs=[dg.define_asset_job("ghl", selection=[ghl_contacts])],
    ).resolve_job_def("ghl")
    return job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": world.config.start.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )


def ghl_contacts_per_day(world: World) -> Counter[str]:
    """The world's contacts per day the API files them under: their dateAdded's, and the
    first day's for those whose dateAdded cannot be read (served at the epoch, so in the
    first partition's window, which reaches back to it)."""
    first = world.config.start.isoformat()
    days: Counter[str] = Counter()
    for contact in world.records("ghl_contacts"):
        added = parse_timestamp(contact["dateAdded"])
        days[day_of(added) if added else first] += 1
    return days


def test_ghl_counts_the_search_reported_per_day_agree_then_warn_on_a_lost_row(
    dbs, instance, world, ghl
):
    synced = sync_ghl(dbs, instance, ghl, world)
    reported = {
        event.materialization.partition: event.materialization.metadata[REPORTED_COUNT].value
        for event in synced.get_asset_materialization_events()
    }
    per_day = ghl_contacts_per_day(world)
    assert reported == {day: per_day[day] for day in reported}  # each day's own total
    assert len(reported) == world.config.days and len(set(reported.values())) > 1

    clean = evaluate(dbs, instance, "ghl_contacts")
    assert clean.passed, clean.metadata
    assert metadata_value(clean, "days_compared") == world.config.days
    total = sum(per_day.values())
    assert metadata_value(clean, "source_total") == total
    assert metadata_value(clean, "warehouse_total") == total
    assert metadata_value(clean, "rejected_total") > 0  # malformed contacts, accounted for
    assert metadata_value(clean, "days_differing") == 0

    lost_day = world.config.start + timedelta(days=2)
    with connect(dbs.warehouse, source="WAREHOUSE_DB_URL", autocommit=True) as warehouse:
        warehouse.execute(
            "update ghl_contacts set deleted_at = now() where id = (select min(id)"
            " from ghl_contacts where (occurred_at at time zone 'UTC')::date = %s)",
            (lost_day,),
        )
    found = evaluate(dbs, instance, "ghl_contacts")
    assert not found.passed
    assert found.severity == dg.AssetCheckSeverity.WARN
    [day] = metadata_value(found, "differing_days").records
    assert day.data == {
        "day": lost_day.isoformat(),
        "source": per_day[lost_day.isoformat()],
        "stored": day.data["stored"],
        "rejected": day.data["rejected"],
        "difference": -1,
    }
    assert metadata_value(found, "warehouse_total") == total - 1


def test_a_ghl_search_without_a_count_warns_on_every_day_instead_of_passing(dbs, instance, world):
    with ghl_sandbox(world, search_count_field=None) as silent:
        synced = sync_ghl(dbs, instance, silent, world)
    materializations = [
        event.materialization for event in synced.get_asset_materialization_events()
    ]
    assert len(materializations) == world.config.days
    assert all(REPORTED_COUNT not in m.metadata for m in materializations)
    assert {m.metadata[MISSING_COUNT].value for m in materializations} == {
        "the search answered without a count (neither `total` nor `count`)"
    }

    found = evaluate(dbs, instance, "ghl_contacts")
    assert not found.passed
    assert found.severity == dg.AssetCheckSeverity.WARN
    assert metadata_value(found, "days_without_count") == world.config.days
    first = world.config.start.isoformat()
    assert f"{first}: the search answered without a count" in metadata_value(found, "problem")
