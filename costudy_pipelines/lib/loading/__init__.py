"""The set-based load engine: source records → warehouse tables, users by email, sync_log,
rejects.

    report = sync_session(url_or_factory, load_spec, records, partition="2025-01-02")

A LoadSpec says where one source's records land; each source folder builds its own
(costudy_pipelines/sources/<name>/spec.py).
"""

from costudy_pipelines.lib.loading.replay import replay_rejects
from costudy_pipelines.lib.loading.report import (
    FAILED,
    PARTIAL,
    SUCCESS,
    SyncFailed,
    SyncReport,
    WarehouseNotMigrated,
)
from costudy_pipelines.lib.loading.session import ConnectionSource, connector, sync_session
from costudy_pipelines.lib.loading.spec import KeyKind, LoadOptions, LoadSpec

__all__ = [
    "FAILED",
    "PARTIAL",
    "SUCCESS",
    "ConnectionSource",
    "KeyKind",
    "LoadOptions",
    "LoadSpec",
    "SyncFailed",
    "SyncReport",
    "WarehouseNotMigrated",
    "connector",
    "replay_rejects",
    "sync_session",
]
