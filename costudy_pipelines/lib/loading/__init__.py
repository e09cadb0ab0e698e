"""The set-based load engine: sources → warehouse tables, users by email, sync_log, rejects.

report = sync_session(url_or_factory, sources.whop_payments(), records, partition="2025-01-02")
"""

from costudy_pipelines.lib.loading import sources
from costudy_pipelines.lib.loading.replay import replay_rejects
from costudy_pipelines.lib.loading.report import (
    FAILED,
    PARTIAL,
    SUCCESS,
    SyncFailed,
    SyncReport,
)
from costudy_pipelines.lib.loading.session import ConnectionSource, connector, sync_session
from costudy_pipelines.lib.loading.spec import (
    DEFAULT_NAME_PRIORITY,
    KeyKind,
    LoadOptions,
    SourceSpec,
)

__all__ = [
    "DEFAULT_NAME_PRIORITY",
    "FAILED",
    "PARTIAL",
    "SUCCESS",
    "ConnectionSource",
    "KeyKind",
    "LoadOptions",
    "SourceSpec",
    "SyncFailed",
    "SyncReport",
    "connector",
    "replay_rejects",
    "sources",
    "sync_session",
]
