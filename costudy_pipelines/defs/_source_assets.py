"""What every source's defs.py shares: the daily partitions, the run config, the asset
arguments its registry entry implies, sync → metadata, and the checks each feed carries."""

import importlib.util
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import dagster as dg

from costudy_pipelines.defs._feed_check import FeedCheck, FeedCheckContext, evaluate_checks
from costudy_pipelines.defs._metadata import Metadata, metadata_table, never_materialized
from costudy_pipelines.defs._shape_drift import observed, record_shape, shape_checks, shape_recorder
from costudy_pipelines.defs._source_counts import MISSING_COUNT, REPORTED_COUNT, counts_check
from costudy_pipelines.defs.migrations import schema_asset_key
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib import quality
from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.clients.http import set_api_share
from costudy_pipelines.lib.loading import SyncFailed, SyncReport, connector
from costudy_pipelines.lib.loading.session import sync_session
from costudy_pipelines.lib.loading.windows import Extract, source_windows, sync_windows
from costudy_pipelines.lib.settings import positive_int_setting
from costudy_pipelines.sources.config import SourcesConfig
from costudy_pipelines.sources.registry import (
    DayReader,
    Feed,
    RegisteredSource,
    ReportedCount,
    Schedule,
)

SOURCE_GROUP = "sources"
Records = Iterable[dict[str, Any]]

# Every source table is created by the warehouse migrations (defs/migrations.py).
WAREHOUSE_SCHEMA = schema_asset_key("warehouse", "dev")
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


def daily_partitions(config: SourcesConfig) -> dg.DailyPartitionsDefinition:
    """One partitions definition for every dated source, so one run (and one backfill) can
    sync them together; a source's own first day is its `available_from`."""
    start = config.partitions_start.isoformat()
    return dg.DailyPartitionsDefinition(start_date=start, timezone="UTC")


class SyncConfig(dg.Config):
    force_delete: bool = False
    """Let a sync soft-delete what its guards refuse: more than sources.toml's
    max_delete_share of live rows, or every row of a day whose extract came back empty."""


def freshness_policy(source: RegisteredSource) -> dg.FreshnessPolicy:
    """Its source's freshness (spec.py): warn, then fail, that many hours after a success."""
    freshness = source.source.freshness
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=freshness.fail_hours),
        warn_window=timedelta(hours=freshness.warn_hours),
    )


def declared_in(source: RegisteredSource) -> dg.CodeReferencesMetadataValue:
    """Where the source is declared: its folder's spec.py."""
    spec = importlib.util.find_spec(f"{source.module}.spec")
    path = spec.origin if spec is not None and spec.origin else source.module
    reference = dg.LocalFileCodeReference(file_path=path, line_number=1, label="declaration")
    return dg.CodeReferencesMetadataValue(code_references=[reference])


def asset_arguments(source: RegisteredSource, feed: Feed, *, kinds: set[str]) -> dict[str, Any]:
    """The AssetSpec arguments of a feed, from its source's declaration: description, group,
    owners, tags, freshness, and a code reference to the declaration (definitions.py adds the
    code that runs it)."""
    return {
        "description": feed.description,
        "group_name": SOURCE_GROUP,
        "owners": list(source.source.owners),
        "kinds": {*kinds, "postgres"},
        "tags": {"costudy/source": source.name},
        "deps": [WAREHOUSE_SCHEMA],
        "freshness_policy": freshness_policy(source),
        "metadata": {"dagster/code_references": declared_in(source)},
    }


def partitioning(source: RegisteredSource) -> dict[str, Any]:
    """A daily source's partitions and backfill policy (none for a source read whole)."""
    if source.source.schedule is not Schedule.DAILY:
        return {}
    return {"partitions_def": daily_partitions(source.config), "backfill_policy": BACKFILL_POLICY}


FeedSync = Callable[[dg.AssetExecutionContext, "SyncConfig"], Iterator["SyncEvent"]]


def feed_asset(
    source: RegisteredSource,
    feed: Feed,
    *,
    kinds: set[str],
    resource_keys: set[str],
    pool: str | None = None,
) -> Callable[[FeedSync], dg.AssetsDefinition]:
    """Makes a feed's sync (`sync(context, config)`, its events) the feed's asset, declared by
    its source (asset_arguments, partitioning), in the op that also evaluates the feed's checks
    (feed_checks): one step per run. Either part can be selected alone: a run of the checks
    only does not sync. `resource_keys`: what the sync needs besides the warehouse; `pool`:
    the API or deployment it shares with others."""
    key = dg.AssetKey(feed.asset)
    checks = feed_checks(key, feed)
    needed = {"warehouse_db", *resource_keys}.union(*(check.resource_keys for check in checks))

    def decorate(sync: FeedSync) -> dg.AssetsDefinition:
        @dg.multi_asset(
            name=feed.asset,
            specs=[dg.AssetSpec(key, **asset_arguments(source, feed, kinds=kinds))],
            check_specs=[check.spec for check in checks],
            can_subset=True,
            pool=pool,
            required_resource_keys=needed,
            **partitioning(source),
        )
        def _asset(
            context: dg.AssetExecutionContext, config: SyncConfig
        ) -> Iterator[SyncEvent | dg.AssetCheckResult]:
            synced = key in context.selected_asset_keys
            if synced:
                yield from sync(context, config)
            yield from evaluate_checks(context, key, checks, synced=synced)

        return _asset

    return decorate


def share_the_api(context: dg.AssetExecutionContext) -> None:
    """This step calls its API at most 1/N of the API's rate limit, N its pool's slots: as many
    steps as the pool admits (parallel ranges of a backfill, a source's assets side by side) stay
    within the limit together. A step outside a pool, or in one of a single slot, has it all."""
    pool, storage = context.op_def.pool, context.instance.event_log_storage
    pooled = pool and storage.supports_global_concurrency_limits
    slots = storage.get_concurrency_info(pool).slot_count if pool and pooled else 0
    set_api_share(slots)
    if slots > 1:
        context.log.info(f"{pool}: {slots} slots, this step takes 1/{slots} of its API's limit")


ENDED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def refused_once_run_ended(context: dg.AssetExecutionContext, extract: Extract) -> Extract:
    """The extract, ending in an error (the day's session rolls back, commits nothing) if the
    run was failed or canceled meanwhile: run monitoring failed it while this step went on
    (on a worker its revocation did not reach), and its retry is syncing the same days."""

    def guarded(window: TimeWindow) -> Iterator[Any]:
        yield from extract(window)
        run = context.instance.get_run_by_id(context.run.run_id)
        if run is not None and run.status in ENDED:
            raise RunEnded(
                f"run {run.run_id} is {run.status.value} (failed by run monitoring or "
                f"canceled) while this step ran: its session for {window} is refused, "
                "nothing of it is committed"
            )

    return guarded


class RunEnded(Exception):
    """A step of a run that has already ended must not commit."""


def run_sync(
    context: dg.AssetExecutionContext,
    warehouse: PostgresResource,
    source: RegisteredSource,
    feed: Feed,
    records: Records,
    *,
    full: bool,
    force_delete: bool = False,
) -> SyncReport:
    """One full-sync session; a failure becomes a dg.Failure that says what and where."""
    share_the_api(context)
    with failures_as_dagster(feed):
        report = sync_session(
            connector(warehouse.url, source=warehouse.env_var),
            feed.load,
            records,
            run_id=context.run.run_id,
            full=full,
            force_delete=force_delete,
            options=source.load_options,
        )
    log_report(context, feed, report)
    return report


@contextmanager
def failures_as_dagster(feed: Feed) -> Iterator[None]:
    """A failed session (SyncFailed) as a dg.Failure naming the asset and partition."""
    try:
        yield
    except SyncFailed as failed:
        raise dg.Failure(
            description=f"{feed.asset} {failed.report.partition or '(full)'}: {failed}",
            metadata=counts(failed.report),
        ) from None


def log_report(context: dg.AssetExecutionContext, feed: Feed, report: SyncReport) -> None:
    context.log.info(
        f"{feed.asset} {report.partition or '(full)'}: {report.records_in} in, "
        f"{report.inserted} new, {report.updated} changed, {report.rejected} rejected, "
        f"{report.soft_deleted} deleted"
    )
    if report.soft_delete_refused:
        context.log.warning(f"{feed.asset}: soft delete refused: {report.soft_delete_refused}")


def counts(report: SyncReport) -> dict[str, int]:
    fields = ("records_in", "inserted", "updated", "unchanged", "duplicates", "rejected")
    extra = ("soft_deleted", "users_created", "users_updated")
    return {name: getattr(report, name) for name in (*fields, *extra)}


def sync_result(report: SyncReport, started: float, **extra: Any) -> dg.MaterializeResult:
    """A full sync's materialization: its session's figures and what the reader adds."""
    return dg.MaterializeResult(
        metadata={**day_metadata(report, time.monotonic() - started), **extra}
    )


def windows(
    context: dg.AssetExecutionContext, source: RegisteredSource
) -> Iterator[tuple[str, TimeWindow]]:
    """(partition key, window) of every partition of this run that the source has data for
    (see source_windows: the source's first partition reaches back to the beginning)."""

    partitions = daily_partitions(source.config)

    def partition(key: str) -> tuple[str, TimeWindow]:
        window = partitions.time_window_for_partition_key(key)
        return key, TimeWindow(window.start, window.end)

    return source_windows(
        map(partition, context.partition_keys), source.first_day(), source.config.partitions_start
    )


def day_metadata(report: SyncReport, seconds: float) -> dict[str, Any]:
    """One session's own figures, as it committed them (its sync_log row): a partition's, or
    a full sync's."""
    metadata: dict[str, Any] = {
        **counts(report),
        "dagster/row_count": report.records_in,
        "status": report.status,
        "duration_s": round(seconds, 3),
        "rows_per_s": round(report.records_in / seconds, 1) if seconds else 0.0,
        "sync_log_id": report.sync_log_id,
        "reject_samples": dg.MetadataValue.json(report.reject_samples[:20]),
    }
    if report.soft_delete_refused:
        metadata["soft_delete_refused"] = report.soft_delete_refused
    return metadata


# What a run adds beyond its days' figures (a source's HTTP counters, say), asked at its end.
RunFigures = Callable[[], Mapping[str, Any]]
SyncEvent = dg.AssetObservation | dg.AssetMaterialization | dg.MaterializeResult


def sync_daily(
    context: dg.AssetExecutionContext,
    config: SyncConfig,
    warehouse: PostgresResource,
    source: RegisteredSource,
    feed: Feed,
    extract: Extract,
    reported_count: Callable[[TimeWindow], int | str | None] | None = None,
    run_figures: RunFigures | None = None,
) -> Iterator[SyncEvent]:
    """Every partition of the run, one session (one transaction) each, pages streamed in: the
    events of the asset's step (`yield from` it).

    A partition's extract is everything the source holds for its window, so the session
    soft-deletes the window's rows it did not see (see sync_session for the guards).
    `reported_count(window)`, asked once the window's extract has been read, is how many
    records the source said the window holds, or why a source that reports counts gave none
    (a str), or None (the source reports no counts); it goes into that partition's
    materialization metadata for `counts_match_source`.

    Each partition's materialization carries its own day's figures and nothing else
    (partition-scoped metadata: Dagster records one materialization per partition of the
    range). As each day but the last commits, an observation of that partition with the same
    figures is yielded at once: the UI shows the run's progress day by day, not all at the
    step's end (the last day's materialization follows it at once; a one-day run stores no
    observation of its day, one asset event fewer).
    What belongs to the run (its partitions, its duration, `run_figures()`) is one line of
    the run's log and one observation of the asset without a partition. If a day fails, the
    days committed before it are materialized there and then, with their figures, and the
    step fails: the failed day (and any after it) shows failed, the earlier stay materialized.
    """
    share_the_api(context)
    started = time.monotonic()
    committed: dict[str, dict[str, Any]] = {}
    partitions = list(windows(context, source))
    last = partitions[-1][0] if partitions else None
    shapes = shape_recorder(warehouse, feed)
    try:
        with failures_as_dagster(feed):
            synced = sync_windows(
                connector(warehouse.url, source=warehouse.env_var),
                feed.load,
                partitions,
                observed(refused_once_run_ended(context, extract), shapes),
                run_id=context.run.run_id,
                force_delete=config.force_delete,
                options=source.load_options,
            )
            day_started = time.monotonic()
            for (key, window), report in zip(partitions, synced, strict=False):
                log_report(context, feed, report)
                metadata = day_metadata(report, time.monotonic() - day_started)
                metadata.update(record_shape(context, warehouse, shapes, feed, report))
                reported = reported_count(window) if reported_count else None
                if isinstance(reported, int):
                    metadata[REPORTED_COUNT] = reported
                elif reported is not None:
                    context.log.warning(f"{feed.asset} {key}: no count to reconcile: {reported}")
                    metadata[MISSING_COUNT] = reported
                context.add_asset_metadata(metadata, partition_key=key)
                committed[key] = metadata
                # the day is committed: show it now, before the next day's session commits
                # (the last day's materialization follows at once: no observation of it)
                if key != last:
                    yield dg.AssetObservation(context.asset_key, partition=key, metadata=metadata)
                day_started = time.monotonic()
    except Exception:
        log_run(context, feed, committed, started, run_figures)
        for key, metadata in committed.items():
            yield dg.AssetMaterialization(context.asset_key, partition=key, metadata=metadata)
        raise
    figures = log_run(context, feed, committed, started, run_figures)
    yield dg.AssetObservation(context.asset_key, metadata=figures)
    yield dg.MaterializeResult()


def daily_asset(
    source: RegisteredSource,
    feed: Feed,
    *,
    kinds: set[str],
    pool: str,
    resource_key: str,
    open_reader: Callable[[Any], DayReader],
) -> dg.AssetsDefinition:
    """A dated feed's asset: each run opens its reader from the resource `resource_key` (the
    API's connection, the application database) and syncs the run's days through it."""

    @feed_asset(source, feed, kinds=kinds, resource_keys={resource_key}, pool=pool)
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig) -> Iterator[SyncEvent]:
        reader = open_reader(getattr(context.resources, resource_key))
        try:
            yield from sync_daily(
                context,
                config,
                context.resources.warehouse_db,
                source,
                feed,
                reader.day,
                reader.reported if isinstance(feed.counts, ReportedCount) else None,
                run_figures=reader.run_figures,
            )
        finally:
            reader.close()

    return _asset


def log_run(
    context: dg.AssetExecutionContext,
    feed: Feed,
    committed: Mapping[str, Any],
    started: float,
    run_figures: RunFigures | None,
) -> dict[str, Any]:
    """The run's own figures, in its log: how many days it committed, how long it took, and
    what the source's reader counted (requests, bytes, waits)."""
    figures: dict[str, Any] = {
        "run_partitions": len(committed),
        "run_duration_s": round(time.monotonic() - started, 2),
        **(run_figures() if run_figures else {}),
    }
    context.log.info(
        f"{feed.asset} run: " + ", ".join(f"{name} {value}" for name, value in figures.items())
    )
    return figures


REJECT_RATE_WARN = 0.05
REJECT_COLUMNS = {"id": "int", "partition": "string", "record_key": "string", "reason": "string"}


def feed_checks(asset_key: dg.AssetKey, feed: Feed) -> list[FeedCheck]:
    """Integrity (keys unique, no orphans), run accounting (in = stored + rejected), the
    reject rate, the count comparison its registry entry declares and its shape drift."""
    spec = feed.load
    hashed = spec.key_sql_type == "bytea"

    def latest_run(shared: FeedCheckContext) -> tuple[str, quality.RunCounts] | dg.AssetCheckResult:
        """The latest materialization's run and its sync_log counts, or the skip (WARN) to
        return when the asset was never materialized: nothing to compare is never a pass."""
        run_id = shared.latest_run_id
        if run_id is None:
            return never_materialized()
        with shared.warehouse.connect() as conn:
            return run_id, quality.run_counts(conn, spec.name, run_id)

    def integrity(shared: FeedCheckContext) -> dg.AssetCheckResult:
        with shared.warehouse.connect() as conn:
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

    def run_accounting(shared: FeedCheckContext) -> dg.AssetCheckResult:
        found = latest_run(shared)
        if isinstance(found, dg.AssetCheckResult):
            return found
        run_id, run = found
        balanced = run.records_in == run.accounted and (run.rejected == 0) == (
            run.rejects_recorded == 0
        )
        return dg.AssetCheckResult(
            passed=balanced,
            metadata={
                "run_id": run_id,
                "sessions": run.sessions,
                "records_in": run.records_in,
                "accounted": run.accounted,
                "rejected": run.rejected,
                "rejects_recorded": run.rejects_recorded,
            },
        )

    def reject_rate(shared: FeedCheckContext) -> dg.AssetCheckResult:
        found = latest_run(shared)
        if isinstance(found, dg.AssetCheckResult):
            return found
        run_id, run = found
        return rejects_result(feed, run, run_id, shared.warehouse)

    def check(name: str, description: str, *, blocking: bool = False) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(name, asset=asset_key, description=description, blocking=blocking)

    run_checks = [
        FeedCheck(
            check(
                "integrity",
                f"{spec.table}: every {spec.key_column} is unique and every row points at an "
                "existing user. A failure lists sample keys; fix the load, never the table by "
                "hand.",
                blocking=True,
            ),
            integrity,
        ),
        FeedCheck(
            check(
                "run_accounting",
                "Every record of the latest run was stored, a duplicate, or rejected with its "
                "reason recorded in sync_rejects: nothing lost silently.",
                blocking=True,
            ),
            run_accounting,
        ),
        FeedCheck(
            check(
                "reject_rate",
                f"At most {REJECT_RATE_WARN:.0%} of the latest run's records rejected (WARN): "
                "its top reasons with their counts, a sample, and the commands that list the "
                f"rejects and replay them (`costudy rejects replay --source {feed.asset}`).",
            ),
            reject_rate,
        ),
    ]
    return [*run_checks, *counts_check(asset_key, feed), *shape_checks(asset_key, feed)]


def rejects_result(
    feed: Feed, run: quality.RunCounts, run_id: str, warehouse: PostgresResource
) -> dg.AssetCheckResult:
    """The reject rate of a feed's latest run against REJECT_RATE_WARN, and what an operator
    acts on: the top reasons with counts, the first rejects, the commands to see and replay
    them."""
    metadata: Metadata = {
        "reject_rate": round(run.reject_rate, 4),
        "threshold": REJECT_RATE_WARN,
        "rejected": run.rejected,
        "records_in": run.records_in,
    }
    description = f"{run.rejected} of {run.records_in} records rejected"
    if run.rejected:
        with warehouse.connect() as conn:
            rejects = quality.run_rejects(conn, feed.load.name, run_id)
        reason, count = rejects.reasons[0] if rejects.reasons else ("unrecorded", run.rejected)
        metadata |= {
            "top_reasons": metadata_table(
                [{"reason": r, "rejects": n} for r, n in rejects.reasons],
                {"reason": "string", "rejects": "int"},
            ),
            "reject_samples": metadata_table(
                [dict(zip(REJECT_COLUMNS, sample, strict=True)) for sample in rejects.samples],
                REJECT_COLUMNS,
            ),
            "list_rejects": f"costudy rejects list --source {feed.asset}",
            "replay_rejects": f"costudy rejects replay --source {feed.asset}",
        }
        description += (
            f" ({run.reject_rate:.1%}), most for {reason!r} ({count}). Fix them at the source "
            f"and re-sync, or fix the validator and run `costudy rejects replay --source "
            f"{feed.asset}`; `costudy rejects list --source {feed.asset}` lists them."
        )
    return dg.AssetCheckResult(
        passed=run.reject_rate <= REJECT_RATE_WARN,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=description,
    )


def source_definitions(
    assets: Sequence[dg.AssetsDefinition], source: RegisteredSource, resources: dict[str, Any]
) -> dg.Definitions:
    """A source's Definitions: one asset per feed (in feed order; each made by feed_asset, its
    checks with it), and the source's resources."""
    if len(assets) != len(source.feeds):
        raise ValueError(
            f"source {source.name!r}: defs.py built {len(assets)} assets for "
            f"{len(source.feeds)} feeds"
        )
    return dg.Definitions(assets=list(assets), resources=resources)
