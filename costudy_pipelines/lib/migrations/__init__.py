"""Schema migrations: versioned SQL files per database, applied in order, tracked, checked.

The public surface (plain Python, no Dagster):

- `apply_pending(url, folder)`: bring one database up to date (tests, other code);
- `discover(folder)`: the files of a folder (any `Layout`) as a `MigrationSet`;
- `load_config()`: sql/environments.toml, the databases and their environments;
- `promote(...)`, `database_status(...)`: every environment in promotion order, and drift;
- `apply`, `rollback`, `repair`, `baseline`, `adopt`, `inspect`: one database in one
  environment (a `Target`: its URL, `TrackingTable`, placeholders and session `Timeouts`);
- `lint(sql)`: what a file does to locks and callers (lint.py).
"""

from costudy_pipelines.lib.migrations.analysis import (
    ALLOW_DESTRUCTIVE,
    NO_TRANSACTION,
    FileAnalysis,
    Mode,
    analyse,
)
from costudy_pipelines.lib.migrations.config import (
    DatabaseMigrations,
    Environment,
    MigrationConfig,
    load_config,
)
from costudy_pipelines.lib.migrations.discovery import Layout, Migration, MigrationSet, discover
from costudy_pipelines.lib.migrations.errors import (
    BackupError,
    ConfigError,
    DiscoveryError,
    LockTimeout,
    MigrationError,
    MigrationFailed,
    PlanRefused,
)
from costudy_pipelines.lib.migrations.lint import LintFinding, lint
from costudy_pipelines.lib.migrations.maintenance import (
    RepairReport,
    RollbackReport,
    adopt,
    baseline,
    repair,
    rollback,
)
from costudy_pipelines.lib.migrations.promotion import (
    DatabaseStatus,
    Drift,
    EnvironmentStatus,
    database_status,
    inspect,
    promote,
)
from costudy_pipelines.lib.migrations.runner import (
    AppliedFile,
    ApplyReport,
    RunOptions,
    State,
    apply,
    apply_pending,
)
from costudy_pipelines.lib.migrations.target import Target, Timeouts
from costudy_pipelines.lib.migrations.tracking import TrackingTable

__all__ = [
    "ALLOW_DESTRUCTIVE",
    "NO_TRANSACTION",
    "AppliedFile",
    "ApplyReport",
    "BackupError",
    "ConfigError",
    "DatabaseMigrations",
    "DatabaseStatus",
    "DiscoveryError",
    "Drift",
    "Environment",
    "EnvironmentStatus",
    "FileAnalysis",
    "Layout",
    "LintFinding",
    "LockTimeout",
    "Migration",
    "MigrationConfig",
    "MigrationError",
    "MigrationFailed",
    "MigrationSet",
    "Mode",
    "PlanRefused",
    "RepairReport",
    "RollbackReport",
    "RunOptions",
    "State",
    "Target",
    "Timeouts",
    "TrackingTable",
    "adopt",
    "analyse",
    "apply",
    "apply_pending",
    "baseline",
    "database_status",
    "discover",
    "inspect",
    "lint",
    "load_config",
    "promote",
    "repair",
    "rollback",
]
