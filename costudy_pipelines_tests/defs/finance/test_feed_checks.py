"""A feed's checks as the project defines them: in its asset's op (one step for the sync and
its checks), and what `reject_rate` tells the operator when a run rejects too much (its top
reasons with counts, the first rejects, the commands that list and replay them)."""

from collections.abc import Iterator

import dagster as dg

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.defs._source_assets import SyncConfig, SyncEvent, feed_asset
from costudy_pipelines.lib.loading import sync_session
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.sources.registry import load_registry
from costudy_pipelines.sources.whop.spec import whop_payments as spec_whop_payments
from costudy_pipelines_tests.defs.finance.loading import whop_payments_by_day
from costudy_pipelines_tests.defs.finance.support import evaluations, metadata_value, run
from costudy_pipelines_tests.registered import registered

ASSET = dg.AssetKey("whop_payments")
DAY = "2024-01-03"


def test_a_feeds_asset_declares_its_checks_with_the_blocking_ones_marked() -> None:
    [asset] = [a for a in project_definitions().assets or [] if ASSET in getattr(a, "keys", ())]
    assert isinstance(asset, dg.AssetsDefinition)
    names = {key.name for key in asset.check_keys}
    assert names == {"integrity", "run_accounting", "reject_rate", "shape_drift"}
    blocking = {spec.name for spec in asset.check_specs if spec.blocking}
    assert blocking == {"integrity", "run_accounting"}
    separate = project_definitions().asset_checks or []
    assert not [c for c in separate if any(key.asset_key == ASSET for key in c.check_keys)]


def stand_in(records: list[dict]) -> dg.AssetsDefinition:
    """whop_payments as the project makes it (feed_asset: its checks in its op), its sync one
    session of `records` under the run's id."""
    registry = load_registry()

    @feed_asset(
        registry.source("whop"), registry.feed("whop_payments"), kinds={"whop"}, resource_keys=set()
    )
    def whop_payments(context: dg.AssetExecutionContext, config: SyncConfig) -> Iterator[SyncEvent]:
        warehouse = context.resources.warehouse_db.url
        spec = registered(spec_whop_payments())
        sync_session(warehouse, spec, records, partition=DAY, run_id=context.run.run_id)
        yield dg.MaterializeResult()

    return whop_payments


def test_the_asset_and_its_checks_run_as_one_step_and_reject_rate_says_what_to_do(
    dbs, instance, world
) -> None:
    day = whop_payments_by_day(world)[DAY]
    bad_email = [
        {**record, "id": f"{record['id']}_bad", "customer_email": "not an email"}
        for record in day[:3]
    ]
    bad_total = [{**day[3], "id": f"{day[3]['id']}_bad", "total": "lots"}]
    asset = stand_in([*day, *bad_email, *bad_total])
    result = run(dbs, instance, [asset], partition_key=DAY)

    started = [event.step_key for event in result.all_events if event.is_step_start]
    assert started == ["whop_payments"]
    found = evaluations(result)
    assert found["whop_payments", "run_accounting"].passed
    rate = found["whop_payments", "reject_rate"]
    assert not rate.passed and rate.severity == dg.AssetCheckSeverity.WARN
    assert metadata_value(rate, "rejected") == 4
    assert metadata_value(rate, "records_in") == len(day) + 4

    with connect(dbs.warehouse, source="WAREHOUSE_DB_URL", autocommit=True) as warehouse:
        stored = dict(
            warehouse.execute(
                "select id, reason from sync_rejects where source = 'whop_payments' "
                "and run_id = %s",
                (result.run_id,),
            ).fetchall()
        )
    top = [row.data for row in metadata_value(rate, "top_reasons").records]
    assert [reason["rejects"] for reason in top] == [3, 1]
    assert {reason["reason"] for reason in top} == set(stored.values())
    assert "malformed email" in top[0]["reason"]
    samples = [row.data for row in metadata_value(rate, "reject_samples").records]
    assert {sample["id"]: sample["reason"] for sample in samples} == stored
    assert {sample["partition"] for sample in samples} == {DAY}
    replay = "costudy rejects replay --source whop_payments"
    assert metadata_value(rate, "replay_rejects") == replay
    assert metadata_value(rate, "list_rejects") == "costudy rejects list --source whop_payments"
    assert replay in (rate.description or "")
    assert top[0]["reason"] in (rate.description or "")
