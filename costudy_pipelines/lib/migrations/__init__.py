"""Schema migrations: numbered SQL files per database, applied in order, tracked, checked.

The public surface (plain Python, no Dagster):

- `apply_pending(url, folder)`: bring one database up to date (tests, other code);
- `discover(folder)`: the files of a folder as a `MigrationSet` (with a `fingerprint()`);
- `load_config()`: sql/environments.toml, the databases and their environments;
- `promote(...)`, `database_status(...)`: every environment in promotion order, and drift;
- `apply`, `rollback`, `repair`, `baseline`, `inspect`: one database in one environment.
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
from costudy_pipelines.lib.migrations.discovery import Migration, MigrationSet, discover
from costudy_pipelines.lib.migrations.errors import (
    BackupError,
    ConfigError,
    DiscoveryError,
    LockTimeout,
    MigrationError,
    MigrationFailed,
    PlanRefused,
)
from costudy_pipelines.lib.migrations.maintenance import (
    RepairReport,
    RollbackReport,
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
from costudy_pipelines.lib.migrations.target import Target

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
    "analyse",
    "apply",
    "apply_pending",
    "baseline",
    "database_status",
    "discover",
    "inspect",
    "load_config",
    "promote",
    "repair",
    "rollback",
]
