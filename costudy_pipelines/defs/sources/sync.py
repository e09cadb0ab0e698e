"""What every source asset shares: the daily partitions, the run config, sync → metadata."""

import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from costudy_pipelines.defs.migrations import schema_asset_key
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.defs.source_counts import REPORTED_COUNT
from costudy_pipelines.lib import quality
from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.loading import (
    SourceSpec,
    SyncFailed,
    SyncReport,
    connector,
    sync_session,
)
from costudy_pipelines.lib.settings import positive_int_setting
from costudy_pipelines.lib.source_config import load_sources_config
from costudy_pipelines.lib.source_sync import Extract, source_windows, sync_windows

# BackfillPolicy is beta in Dagster 1.13; single-run backfills are what the sources need.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")

SOURCES = load_sources_config()

# One partitions definition for every dated source, so one run (and one backfill) can sync
# them together; a source's own first day is `available_from` in sources.toml.
DAILY = dg.DailyPartitionsDefinition(
    start_date=SOURCES.partitions_start.isoformat(), timezone="UTC"
)
BACKFILL_DAYS_VAR = "COSTUDY_BACKFILL_DAYS_PER_RUN"


def backfill_policy() -> dg.BackfillPolicy:
    """How a backfill is split into runs. Each partition is its own sync session and
    transaction, so by default a backfill of many days is one run, not one per day; with
    COSTUDY_BACKFILL_DAYS_PER_RUN=N it is ranges of N days, one run each, that run side by side
    (on celery workers: on several machines) while the API pools bound the request rate."""
    days = positive_int_setting(BACKFILL_DAYS_VAR)
    if days is None:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=days)


BACKFILL_POLICY = backfill_policy()

Records = Iterable[dict[str, Any]]

# Every source table is created by the warehouse migrations (defs/migrations.py).
WAREHOUSE_SCHEMA = schema_asset_key("warehouse", "dev")


class SyncConfig(dg.Config):
    force_delete: bool = False
    """Let a sync soft-delete what its guards refuse: more than sources.toml's
    max_delete_share of live rows, or every row of a day whose extract came back empty."""


def run_sync(
    context: dg.AssetExecutionContext,
    warehouse: PostgresResource,
    spec: SourceSpec,
    records: Records,
    *,
    partition: str | None,
    full: bool,
    window: TimeWindow | None = None,
    force_delete: bool = False,
) -> SyncReport:
    """One sync session; a failure becomes a dg.Failure that says what and where."""
    with failures_as_dagster(spec):
        report = sync_session(
            connector(warehouse.url, source=warehouse.env_var),
            spec,
            records,
            partition=partition,
            run_id=context.run.run_id,
            full=full,
            window=window,
            force_delete=force_delete,
            max_delete_share=SOURCES.max_delete_share,
        )
    log_report(context, spec, report)
    return report


@contextmanager
def failures_as_dagster(spec: SourceSpec) -> Iterator[None]:
    """A failed session (SyncFailed) as a dg.Failure naming the source and partition."""
    try:
        yield
    except SyncFailed as failed:
        raise dg.Failure(
            description=f"{spec.name} {failed.report.partition or '(full)'}: {failed}",
            metadata=counts(failed.report),
        ) from None


def log_report(context: dg.AssetExecutionContext, spec: SourceSpec, report: SyncReport) -> None:
    context.log.info(
        f"{spec.name} {report.partition or '(full)'}: {report.records_in} in, "
        f"{report.inserted} new, {report.updated} changed, {report.rejected} rejected, "
        f"{report.soft_deleted} deleted"
    )
    if report.soft_delete_refused:
        context.log.warning(f"{spec.name}: soft delete refused: {report.soft_delete_refused}")


def counts(report: SyncReport) -> dict[str, int]:
    fields = ("records_in", "inserted", "updated", "unchanged", "duplicates", "rejected")
    extra = ("soft_deleted", "users_created", "users_updated")
    return {name: getattr(report, name) for name in (*fields, *extra)}


def sync_result(reports: list[SyncReport], started: float, **extra: Any) -> dg.MaterializeResult:
    """Operator metadata over one or many sessions: totals, per-partition table, reject sample."""
    seconds = time.monotonic() - started
    totals = {
        name: sum(counts(r)[name] for r in reports)
        for name in counts(SyncReport("", "", None, None, False))
    }
    samples = [sample for report in reports for sample in report.reject_samples][:20]
    refused = [r.soft_delete_refused for r in reports if r.soft_delete_refused]
    metadata: dict[str, Any] = {
        **totals,
        "dagster/row_count": totals["records_in"],
        "sessions": len(reports),
        "status": worst_status(reports),
        "duration_s": round(seconds, 2),
        "rows_per_s": round(totals["records_in"] / seconds, 1) if seconds else 0.0,
        "reject_samples": dg.MetadataValue.json(samples),
        **extra,
    }
    if refused:
        metadata["soft_delete_refused"] = "; ".join(refused)
    if len(reports) > 1:
        metadata["partitions"] = partition_table(reports)
    return dg.MaterializeResult(metadata=metadata)


def worst_status(reports: list[SyncReport]) -> str:
    statuses = {report.status for report in reports}
    return "PARTIAL" if "PARTIAL" in statuses else ("SUCCESS" if reports else "SKIPPED")


def partition_table(reports: list[SyncReport]) -> dg.TableMetadataValue:
    names = ("records_in", "inserted", "updated", "rejected")
    return dg.MetadataValue.table(
        [
            dg.TableRecord(
                {
                    "partition": r.partition or "",
                    "status": r.status,
                    **{n: getattr(r, n) for n in names},
                }
            )
            for r in reports
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("partition", "string"),
                dg.TableColumn("status", "string"),
                *(dg.TableColumn(name, "int") for name in names),
            ]
        ),
    )


def windows(context: dg.AssetExecutionContext, family: str) -> Iterator[tuple[str, TimeWindow]]:
    """(partition key, window) of every partition of this run that the source has data for
    (see source_windows: the source's first partition reaches back to the beginning)."""

    def partition(key: str) -> tuple[str, TimeWindow]:
        window = DAILY.time_window_for_partition_key(key)
        return key, TimeWindow(window.start, window.end)

    return source_windows(map(partition, context.partition_keys), SOURCES, family)


def sync_daily(
    context: dg.AssetExecutionContext,
    config: SyncConfig,
    warehouse: PostgresResource,
    spec: SourceSpec,
    family: str,
    extract: Extract,
    reported_count: Callable[[TimeWindow], int | None] | None = None,
) -> dg.MaterializeResult:
    """Every partition of the run, one session (one transaction) each, pages streamed in.

    A partition's extract is everything the source holds for its window, so the session
    soft-deletes the window's rows it did not see (see sync_session for the guards).
    `reported_count(window)`, asked once the window's extract has been read, is how many
    records the source said the window holds (None: it did not say); it goes into that
    partition's materialization metadata for `counts_match_source`.
    """
    started = time.monotonic()
    reports = []
    partitions = list(windows(context, family))
    with failures_as_dagster(spec):
        synced = sync_windows(
            connector(warehouse.url, source=warehouse.env_var),
            spec,
            partitions,
            extract,
            run_id=context.run.run_id,
            force_delete=config.force_delete,
            max_delete_share=SOURCES.max_delete_share,
        )
        for (key, window), report in zip(partitions, synced, strict=False):
            log_report(context, spec, report)
            reports.append(report)
            reported = reported_count(window) if reported_count else None
            if reported is not None:
                context.add_asset_metadata({REPORTED_COUNT: reported}, partition_key=key)
    return sync_result(reports, started)


REJECT_RATE_WARN = 0.05


def source_checks(asset_key: dg.AssetKey, spec: SourceSpec) -> list[dg.AssetChecksDefinition]:
    """Integrity (keys unique, no orphans) and run accounting (in = stored + rejected) for one
    source asset; blocking, so nothing downstream runs on a table that fails them."""
    hashed = spec.key_sql_type == "bytea"

    @dg.asset_check(asset=asset_key, name="integrity", blocking=True)
    def integrity(warehouse_db: PostgresResource) -> dg.AssetCheckResult:
        with warehouse_db.connect() as conn:
            duplicates = quality.duplicate_keys(conn, spec.table, spec.key_column, hashed)
            orphans = quality.orphan_rows(conn, spec.table, spec.key_column, hashed)
        return dg.AssetCheckResult(
            passed=duplicates.ok and orphans.ok,
            metadata={
                "duplicate_keys": duplicates.count,
                "duplicate_key_samples": duplicates.samples,
                "orphan_rows": orphans.count,
                "orphan_samples": orphans.samples,
            },
        )

    @dg.asset_check(asset=asset_key, name="run_accounting", blocking=True)
    def run_accounting(
        context: dg.AssetCheckExecutionContext, warehouse_db: PostgresResource
    ) -> dg.AssetCheckResult:
        """Every record of the latest materialization's run was stored, a duplicate, or rejected
        with a reason recorded (ERROR); the reject rate stays under 5 % (WARN, own check)."""
        event = context.instance.get_latest_materialization_event(asset_key)
        if event is None:
            return dg.AssetCheckResult(passed=True, metadata={"runs": 0})
        with warehouse_db.connect() as conn:
            run = quality.run_counts(conn, spec.name, event.run_id)
        balanced = run.records_in == run.accounted and (run.rejected == 0) == (
            run.rejects_recorded == 0
        )
        return dg.AssetCheckResult(
            passed=balanced,
            metadata={
                "run_id": event.run_id,
                "sessions": run.sessions,
                "records_in": run.records_in,
                "accounted": run.accounted,
                "rejected": run.rejected,
                "rejects_recorded": run.rejects_recorded,
            },
        )

    @dg.asset_check(asset=asset_key, name="reject_rate")
    def reject_rate(
        context: dg.AssetCheckExecutionContext, warehouse_db: PostgresResource
    ) -> dg.AssetCheckResult:
        event = context.instance.get_latest_materialization_event(asset_key)
        if event is None:
            return dg.AssetCheckResult(passed=True, metadata={"runs": 0})
        with warehouse_db.connect() as conn:
            run = quality.run_counts(conn, spec.name, event.run_id)
        return dg.AssetCheckResult(
            passed=run.reject_rate <= REJECT_RATE_WARN,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "reject_rate": round(run.reject_rate, 4),
                "threshold": REJECT_RATE_WARN,
                "rejected": run.rejected,
                "records_in": run.records_in,
            },
        )

    return [integrity, run_accounting, reject_rate]


def source_definitions(
    synced: list[tuple[dg.AssetsDefinition, SourceSpec]],
    resources: dict[str, Any] | None = None,
) -> dg.Definitions:
    """A source module's `defs`: its assets, each with its quality checks, and its resources."""
    return dg.Definitions(
        assets=[asset for asset, _ in synced],
        asset_checks=[check for asset, spec in synced for check in source_checks(asset.key, spec)],
        resources=resources or {},
    )
