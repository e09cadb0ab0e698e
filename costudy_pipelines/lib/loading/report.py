"""What a sync session reports: counts, status, timings, samples of rejects."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SUCCESS = "SUCCESS"
PARTIAL = "PARTIAL"
FAILED = "FAILED"
RUNNING = "RUNNING"


@dataclass
class SyncReport:
    """The outcome of one sync session, as recorded in sync_log.

    records_in = inserted + updated + unchanged + duplicates + rejected.
    PARTIAL: the session committed but rejected records or refused its soft delete.
    """

    source: str
    table: str
    partition: str | None
    run_id: str | None
    full: bool
    sync_log_id: int | None = None
    status: str = RUNNING
    records_in: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    soft_deleted: int = 0
    users_created: int = 0
    users_updated: int = 0
    resolved_rejects: int = 0
    soft_delete_refused: str | None = None
    error: str | None = None
    reject_samples: list[dict[str, str | None]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def written(self) -> int:
        """Source rows written (inserted + updated + soft-deleted): 0 for a no-change re-sync."""
        return self.inserted + self.updated + self.soft_deleted

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class WarehouseNotMigrated(RuntimeError):
    """The warehouse lacks the project's tables: its migrations were never applied there. The
    message names the database, the missing relation and the command that fixes it."""

    @classmethod
    def on(cls, conn: Any, exc: Exception) -> WarehouseNotMigrated:
        """The error for `exc` (an UndefinedTable) raised on the warehouse connection `conn`."""
        where = f"{conn.info.dbname!r} on {conn.info.host}:{conn.info.port}"
        missing = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)
        return cls(
            f"the warehouse database {where} is not migrated ({missing}): run `costudy migrate "
            "apply` (`costudy migrate status` shows what is pending where)"
        )


class SyncFailed(RuntimeError):
    """A session failed and wrote nothing; sync_log holds it as FAILED. `report` has counts."""

    def __init__(self, message: str, report: SyncReport) -> None:
        super().__init__(message)
        self.report = report
