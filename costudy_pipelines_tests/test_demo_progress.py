"""`costudy demo`'s progress display: one line per asset as its step ends, with the
partitions and records it materialized, read from the run's own events as they happen."""

import uuid

import dagster as dg

from costudy_pipelines.demo import StepProgress

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def payments(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    for number, key in enumerate(context.partition_keys, start=1):
        context.add_asset_metadata({"records_in": 10 * number}, partition_key=key)
    return dg.MaterializeResult()


@dg.asset(deps=[payments])
def report() -> None:
    raise dg.Failure("the report broke")


def test_one_line_per_asset_with_its_partitions_and_records() -> None:
    lines: list[str] = []
    run_id = str(uuid.uuid4())
    job = dg.Definitions(
        assets=[payments, report], jobs=[dg.define_asset_job("both", [payments, report])]
    ).resolve_job_def("both")
    with dg.instance_for_test() as instance:
        instance.add_event_listener(run_id, StepProgress(lines.append, assets=2))
        job.execute_in_process(
            instance=instance,
            run_id=run_id,
            tags={
                "dagster/asset_partition_range_start": "2024-01-01",
                "dagster/asset_partition_range_end": "2024-01-03",
            },
            raise_on_error=False,
        )
    assert len(lines) == 2, lines
    assert lines[0].startswith("[1/2] payments done in ")
    assert lines[0].endswith(": 3 partitions, 60 records")
    assert lines[1].startswith("[1/2] report FAILED in ")
