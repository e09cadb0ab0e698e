"""Each database's schema as an asset per environment: `platform_schema_dev`, `..._prod`, ...

One asset per (database, environment), not one asset partitioned by environment, because:
- promotion order is a real dependency: prod may only take files dev has taken. As separate
  assets, `platform_schema_prod` depends on `platform_schema_dev`, the graph shows it and a
  run materializes them in that order; partitions of one asset cannot depend on each other;
- each environment has its own resource (platform_db, platform_prod_db), its own checks and
  its own history in the UI, and production adds steps (backup, destructive lint) dev lacks;
- environments are few and fixed by sql/environments.toml, which is what assets are for;
  partitions suit many similar slices of data (days, sources), not deployment stages.

Materializing applies the pending files (production: after a pg_dump backup) and records each
file's timing in the metadata. Checks: `up_to_date` and `no_edited_files` on every asset,
`environments_agree` (drift: applied sets and live catalogs) on the last environment's asset.
Other assets that need a schema depend on `schema_asset_key(database, environment)`.
"""

import dagster as dg

from costudy_pipelines.defs.resources import PostgresResource, database_resource_key
from costudy_pipelines.lib.migrations import (
    ApplyReport,
    ConfigError,
    DatabaseMigrations,
    Environment,
    EnvironmentStatus,
    MigrationConfig,
    MigrationError,
    MigrationSet,
    RunOptions,
    State,
    Target,
    apply,
    discover,
    inspect,
    load_config,
)
from costudy_pipelines.lib.migrations.promotion import drift_across
from costudy_pipelines.lib.migrations.runner import default_actor
from costudy_pipelines.lib.settings import DATABASES

GROUP = "schema_migrations"


def schema_asset_key(database: str, environment: str) -> dg.AssetKey:
    return dg.AssetKey(f"{database}_schema_{environment}")


def resource_key(environment: Environment) -> str:
    """The PostgresResource that reads the same variable as the environment."""
    for spec in DATABASES:
        if spec.env_var == environment.url_env:
            return database_resource_key(spec.embedded_name)
    raise ConfigError(
        f"environment {environment.name} reads {environment.url_env}, which no database "
        "resource reads: add it to DATABASES in lib/settings.py"
    )


def _target(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    database: DatabaseMigrations,
    environment: Environment,
) -> Target:
    resource: PostgresResource = getattr(context.resources, resource_key(environment))
    return Target(
        database.name, environment.name, resource.url, resource.env_var, environment.production
    )


def _timings(report: ApplyReport) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        [
            dg.TableRecord(
                {
                    "version": applied.version,
                    "file": applied.name,
                    "mode": str(applied.mode),
                    "statements": applied.statements,
                    "ms": applied.execution_ms,
                }
            )
            for applied in report.applied
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("version", "int"),
                dg.TableColumn("file", "string"),
                dg.TableColumn("mode", "string"),
                dg.TableColumn("statements", "int"),
                dg.TableColumn("ms", "float"),
            ]
        ),
    )


def _schema_asset(config: MigrationConfig, database: DatabaseMigrations, environment: Environment):
    upstream = database.upstream(environment.name)
    resources = {resource_key(environment)} | ({resource_key(upstream)} if upstream else set())

    @dg.asset(
        key=schema_asset_key(database.name, environment.name),
        deps=[schema_asset_key(database.name, upstream.name)] if upstream else [],
        group_name=GROUP,
        kinds={"postgres"},
        required_resource_keys=resources,
        description=(
            f"The {database.name} schema in {environment.name}: materializing applies the "
            f"pending files of {database.folder.name}/"
            + (" after a pg_dump backup." if environment.production else ".")
        ),
    )
    def schema(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        options = RunOptions(
            lock_timeout_s=config.lock_timeout_s,
            backup_dir=config.backup_dir,
            actor=f"dagster run {context.run.run_id[:8]} ({default_actor()})",
            upstream=_target(context, database, upstream) if upstream else None,
            progress=context.log.info,
        )
        try:
            migrations = discover(database.folder, database=database.name)
            report = apply(_target(context, database, environment), migrations, options)
        except MigrationError as exc:
            raise dg.Failure(description=str(exc)) from None
        return dg.MaterializeResult(
            metadata={
                "database": report.url,
                "files": len(migrations),
                "applied_now": len(report.applied),
                "already_applied": report.already_applied,
                "version": migrations.latest if migrations.latest is not None else "none",
                "timings": _timings(report),
                "total_ms": sum(applied.execution_ms for applied in report.applied),
                "backup": str(report.backup) if report.backup else "none",
            }
        )

    return schema


def _inspected(
    context: dg.AssetCheckExecutionContext,
    database: DatabaseMigrations,
    environment: Environment,
    *,
    with_catalog: bool = False,
) -> tuple[EnvironmentStatus | None, MigrationSet | None, str | None]:
    try:
        migrations = discover(database.folder, database=database.name)
    except MigrationError as exc:
        return None, None, str(exc)
    status = inspect(_target(context, database, environment), migrations, with_catalog=with_catalog)
    return status, migrations, status.error


def _listed(states: list) -> str:
    return ", ".join(state.name for state in states) or "none"


def _state_checks(database: DatabaseMigrations, environment: Environment) -> list:
    key = schema_asset_key(database.name, environment.name)
    resources = {resource_key(environment)}

    @dg.asset_check(
        asset=key,
        name="up_to_date",
        required_resource_keys=resources,
        description="Every file is applied; none is pending or dirty.",
    )
    def up_to_date(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        status, migrations, error = _inspected(context, database, environment)
        if error or status is None or migrations is None:
            return dg.AssetCheckResult(passed=False, metadata={"error": error or "unknown"})
        pending = [s for s in status.states if s.state in (State.PENDING, State.OUT_OF_ORDER)]
        dirty = [s for s in status.states if s.state is State.DIRTY]
        return dg.AssetCheckResult(
            passed=not pending and not dirty,
            metadata={
                "version": status.current_version if status.current_version else "none",
                "files": len(migrations),
                "pending": _listed(pending),
                "dirty": _listed(dirty),
            },
        )

    @dg.asset_check(
        asset=key,
        name="no_edited_files",
        required_resource_keys=resources,
        description="No applied file was edited or deleted since it was applied.",
    )
    def no_edited_files(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        status, _, error = _inspected(context, database, environment)
        if error or status is None:
            return dg.AssetCheckResult(passed=False, metadata={"error": error or "unknown"})
        edited = [s for s in status.states if s.state is State.EDITED]
        missing = [s for s in status.states if s.state is State.MISSING_FILE]
        return dg.AssetCheckResult(
            passed=not edited and not missing,
            metadata={
                "edited": _listed(edited),
                "missing_files": _listed(missing),
                "details": dg.MetadataValue.md(
                    "\n".join(f"- {s.problem(status.current_version)}" for s in edited + missing)
                    or "none"
                ),
            },
        )

    return [up_to_date, no_edited_files]


def _drift_check(database: DatabaseMigrations):
    last = database.environments[-1]
    labels = " → ".join(environment.name for environment in database.environments)

    @dg.asset_check(
        asset=schema_asset_key(database.name, last.name),
        name="environments_agree",
        required_resource_keys={resource_key(environment) for environment in database.environments},
        description=f"{labels}: same applied files, and the same live catalog at the same version.",
    )
    def environments_agree(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        inspected = [
            _inspected(context, database, environment, with_catalog=True)
            for environment in database.environments
        ]
        errors = [error for _, _, error in inspected if error]
        if errors:
            return dg.AssetCheckResult(passed=False, metadata={"error": "; ".join(errors)})
        drift = drift_across([status for status, _, _ in inspected if status is not None])
        return dg.AssetCheckResult(
            passed=not drift,
            metadata={
                "differences": len(drift),
                "drift": dg.MetadataValue.table(
                    [
                        dg.TableRecord({"kind": d.kind, "object": d.subject, "detail": d.detail})
                        for d in drift
                    ],
                    schema=dg.TableSchema(
                        columns=[
                            dg.TableColumn("kind", "string"),
                            dg.TableColumn("object", "string"),
                            dg.TableColumn("detail", "string"),
                        ]
                    ),
                ),
            },
        )

    return environments_agree


def build_migration_defs(config: MigrationConfig) -> dg.Definitions:
    """The schema assets and checks of every database in `config`."""
    assets, checks = [], []
    for database in config.databases:
        for environment in database.environments:
            assets.append(_schema_asset(config, database, environment))
            checks += _state_checks(database, environment)
        if len(database.environments) > 1:
            checks.append(_drift_check(database))
    return dg.Definitions(assets=assets, asset_checks=checks)


defs = build_migration_defs(load_config())
