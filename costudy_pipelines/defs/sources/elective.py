"""Elective: CSV payment exports dropped into a folder, fully synced into elective_rows."""

import os
import time
from pathlib import Path

import dagster as dg

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.defs.sources.sync import (
    WAREHOUSE_SCHEMA,
    SyncConfig,
    run_sync,
    source_definitions,
    sync_result,
)
from costudy_pipelines.lib.clients.elective import ElectiveReader
from costudy_pipelines.lib.source_sync import ELECTIVE_SPEC, elective_records

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

    def reader(self) -> ElectiveReader:
        return ElectiveReader(Path(self.folder), settle_seconds=self.settle_time())

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


@dg.asset(
    deps=[WAREHOUSE_SCHEMA],
    group_name="sources",
    kinds={"csv", "postgres"},
    tags={"costudy/source": "elective"},
    description="Every Elective export in the drop folder. Rows with no email (an export "
    "without an email column) are rejected with that reason, counted, and kept for replay.",
)
def elective_rows(
    context: dg.AssetExecutionContext,
    config: SyncConfig,
    elective: ElectiveDropResource,
    warehouse_db: PostgresResource,
) -> dg.MaterializeResult:
    started = time.monotonic()
    reader = elective.reader()
    scan = reader.scan()
    for skipped in scan.skipped:
        context.log.warning(f"not taken this time: {skipped.path.name}: {skipped.reason}")
    # Only a scan that took every file is the whole source: only then may rows be soft-deleted.
    report = run_sync(
        context,
        warehouse_db,
        ELECTIVE_SPEC,
        elective_records(reader, scan),
        partition=None,
        full=scan.complete,
        force_delete=config.force_delete,
    )
    return sync_result(
        [report],
        started,
        files=[path.name for path in scan.ready],
        files_skipped=[f"{s.path.name}: {s.reason}" for s in scan.skipped],
    )


defs = source_definitions(
    [(elective_rows, ELECTIVE_SPEC)],
    resources={"elective": ElectiveDropResource(folder=dg.EnvVar("ELECTIVE_DROP_DIR"))},
)
