"""Elective's asset, its checks, and the drop-folder resource."""

import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg

from costudy_pipelines.defs._source_assets import (
    SyncConfig,
    SyncEvent,
    feed_asset,
    run_sync,
    source_definitions,
    sync_result,
)
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.loading.places import RowPlaces
from costudy_pipelines.sources.elective.client import DEFAULT_EMAIL_HEADERS, ElectiveReader
from costudy_pipelines.sources.elective.spec import content_only, elective_rows_read, row_place
from costudy_pipelines.sources.registry import Feed, RegisteredSource

SETTLE_SECONDS_VAR = "ELECTIVE_SETTLE_SECONDS"
DEFAULT_SETTLE_SECONDS = 30.0


class ElectiveDropResource(dg.ConfigurableResource):
    """ELECTIVE_DROP_DIR; a file younger than settle_seconds may still be being written.

    settle_seconds unset: ELECTIVE_SETTLE_SECONDS when the sync runs (not when the code is
    loaded, so a code location started before the variable was set still honours it), else
    30 s. Dagster's EnvVar cannot fill a float field, hence the lookup here.
    """

    folder: str
    settle_seconds: float | None = None

    def reader(self, email_headers: Sequence[str] = DEFAULT_EMAIL_HEADERS) -> ElectiveReader:
        return ElectiveReader(
            Path(self.folder),
            email_headers=tuple(email_headers),
            settle_seconds=self.settle_time(),
        )

    def settle_time(self) -> float:
        if self.settle_seconds is not None:
            return self.settle_seconds
        configured = os.environ.get(SETTLE_SECONDS_VAR, "").strip()
        try:
            return float(configured) if configured else DEFAULT_SETTLE_SECONDS
        except ValueError:
            raise dg.Failure(
                f"{SETTLE_SECONDS_VAR}={configured!r} is not a number of seconds"
            ) from None


def exports_asset(source: RegisteredSource, feed: Feed) -> dg.AssetsDefinition:
    @feed_asset(source, feed, kinds={"csv"}, resource_keys={"elective"})
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig) -> Iterator[SyncEvent]:
        elective: ElectiveDropResource = context.resources.elective
        warehouse_db: PostgresResource = context.resources.warehouse_db
        started = time.monotonic()
        reader = elective.reader(source.settings.email_headers)
        scan = reader.scan()
        for skipped in scan.skipped:
            context.log.warning(f"not taken this time: {skipped.path.name}: {skipped.reason}")
        # Only a scan that took every file is the whole source: only then may rows be
        # soft-deleted.
        places = RowPlaces(feed.load, row_place, content_only)
        report = run_sync(
            context,
            warehouse_db,
            source,
            feed,
            places.track(elective_rows_read(reader, scan)),
            full=scan.complete,
            force_delete=config.force_delete,
        )
        with warehouse_db.connect() as conn:
            resolved = places.resolve(conn, context.run.run_id)
        yield sync_result(
            report,
            started,
            rejects_resolved_by_place=resolved,
            files=[path.name for path in scan.ready],
            # what the sensor compares with: a file taken by any run is not new to it
            file_versions=dg.MetadataValue.json(file_versions(scan.ready)),
            files_skipped=[f"{s.path.name}: {s.reason}" for s in scan.skipped],
        )

    return _asset


def _files_cursor(cursor: str | None) -> dict[str, int]:
    return json.loads(cursor) if cursor else {}


def file_versions(paths: list[Path]) -> dict[str, int]:
    """Each file's name and version (its modification time, ns)."""
    return {path.name: path.stat().st_mtime_ns for path in paths}


def taken(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, int]:
    """The file versions the asset's latest materialization took, by whichever run (the
    demo's job, a backfill): the sensor's cursor knows only the runs it launched."""
    event = instance.get_latest_materialization_event(key)
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    versions = metadata.get("file_versions")
    value = versions.value if isinstance(versions, dg.JsonMetadataValue) else None
    return (
        {str(name): int(mtime) for name, mtime in value.items()} if isinstance(value, dict) else {}
    )


def exports_sensor(asset: dg.AssetsDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        asset_selection=[asset.key],
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="A new or changed Elective export that has finished being written.",
    )
    def new_elective_exports(
        context: dg.SensorEvaluationContext, elective: ElectiveDropResource
    ) -> dg.SensorResult | dg.SkipReason:
        scan = elective.reader().scan()
        ready = file_versions(scan.ready)
        seen, took = _files_cursor(context.cursor), taken(context.instance, asset.key)
        changed = {
            name: mtime
            for name, mtime in sorted(ready.items())
            if mtime not in (seen.get(name), took.get(name))
        }
        waiting = [f"{skipped.path.name}: {skipped.reason}" for skipped in scan.skipped]
        if not changed:
            return dg.SkipReason(
                "no new export" + (f"; still being written: {waiting}" if waiting else "")
            )
        # Run key from the files and their versions: a re-evaluation never launches the same
        # twice.
        run_key = hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:24]
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=run_key, tags={"costudy/trigger": "elective-files"})
            ],
            cursor=json.dumps({**seen, **ready}, sort_keys=True),  # only ever grows or moves on
        )

    return new_elective_exports


def build_defs(source: RegisteredSource) -> dg.Definitions:
    assets = [exports_asset(source, feed) for feed in source.feeds]
    defs = source_definitions(
        assets,
        source,
        resources={"elective": ElectiveDropResource(folder=dg.EnvVar("ELECTIVE_DROP_DIR"))},
    )
    return dg.Definitions.merge(defs, dg.Definitions(sensors=[exports_sensor(assets[0])]))
