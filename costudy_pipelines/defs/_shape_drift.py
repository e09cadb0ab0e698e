"""Shape drift of the feeds that declare their shape (`LoadSpec.shape`): observed while each
partition syncs, kept in its sync_log row, reported by the feed's `shape_drift` check (WARN,
never blocking: a sync goes on, and what no longer validates is rejected with its reason)."""

from collections.abc import Callable, Iterable
from typing import Any

import dagster as dg
import psycopg

from costudy_pipelines.defs._feed_check import FeedCheck, FeedCheckContext
from costudy_pipelines.defs._metadata import never_materialized
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.clients.base import TimeWindow
from costudy_pipelines.lib.loading import SyncReport
from costudy_pipelines.lib.loading.drift import ShapeRecorder, drift_history, known_shape
from costudy_pipelines.sources.registry import Feed

Extract = Callable[[TimeWindow], Iterable[Any]]


def shape_recorder(warehouse: PostgresResource, feed: Feed) -> ShapeRecorder | None:
    """The run's recorder for this feed, its baseline what earlier sessions saw (None when
    the feed declares no shape)."""
    shape = feed.load.shape
    if shape is None:
        return None
    with warehouse.connect() as conn:
        return ShapeRecorder(shape, known_shape(conn, feed.load.name))


def observed(extract: Extract, recorder: ShapeRecorder | None) -> Extract:
    if recorder is None:
        return extract
    return lambda window: recorder.observe(extract(window))


def record_shape(
    context: dg.AssetExecutionContext,
    warehouse: PostgresResource,
    recorder: ShapeRecorder | None,
    feed: Feed,
    report: SyncReport,
) -> dict[str, Any]:
    """Store the partition's shape and drift; its metadata. Best effort: a warehouse error
    here is logged, the committed sync stands."""
    if recorder is None:
        return {}
    try:
        with warehouse.connect(autocommit=True) as conn:
            found = recorder.record(conn, report.sync_log_id)
    except psycopg.Error as exc:
        context.log.warning(f"{feed.asset} {report.partition}: shape not recorded: {exc}")
        return {}
    for item in found:
        context.log.warning(
            f"{feed.asset} {report.partition}: shape drift: {item.describe()}, "
            f"{item.records} record(s), e.g. {item.example_id}"
        )
    return {"shape_drift": len(found)}


def shape_checks(asset_key: dg.AssetKey, feed: Feed) -> list[FeedCheck]:
    spec = feed.load
    if spec.shape is None:
        return []
    declared = ", ".join(
        f"{name}: {'|'.join(sorted(types))}" for name, types in sorted(spec.shape.fields.items())
    )

    def shape_drift(shared: FeedCheckContext) -> dg.AssetCheckResult:
        run_id = shared.latest_run_id
        if run_id is None:
            return never_materialized()
        with shared.warehouse.connect() as conn:
            found = drift_history(conn, sources=[spec.name], run_id=run_id)
        by_kind: dict[str, list[str]] = {"appeared": [], "disappeared": [], "changed_type": []}
        for item in found:
            by_kind.setdefault(item.kind, []).append(item.field)
        return dg.AssetCheckResult(
            passed=not found,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "run_id": run_id,
                "drift": len(found),
                "fields_appeared": sorted(by_kind["appeared"]),
                "fields_disappeared": sorted(by_kind["disappeared"]),
                "fields_changed_type": sorted(by_kind["changed_type"]),
                "details": dg.MetadataValue.md(_table(found)) if found else "no drift",
                "history": f"costudy sources drift --source {feed.asset}",
            },
        )

    description = (
        f"The latest run's raw records have the shape {feed.asset} reads ({declared}) and the "
        "fields seen before: fields appeared, disappeared or changed type are listed with the "
        "first partition and an example record id (WARN, never blocking). History: "
        f"costudy sources drift --source {feed.asset}."
    )
    return [
        FeedCheck(
            dg.AssetCheckSpec("shape_drift", asset=asset_key, description=description), shape_drift
        )
    ]


def _table(found: list[Any]) -> str:
    lines = [
        "| field | change | read by feed | expected | found | first partition | example id "
        "| partitions | records |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for item in found:
        lines.append(
            f"| {item.field} | {item.kind} | {'yes' if item.declared else 'no'} "
            f"| {'/'.join(item.expected) or '-'} | {'/'.join(item.found) or '-'} "
            f"| {item.first_partition} | {item.example_id} | {item.partitions} | {item.records} |"
        )
    return "\n".join(lines)
