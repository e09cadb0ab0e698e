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

import re
from collections.abc import Callable

import dagster as dg

from costudy_pipelines.defs.resources import DATABASE_RESOURCES, PostgresResource
from costudy_pipelines.lib.migrations import (
    ApplyReport,
    DatabaseMigrations,
    Environment,
    EnvironmentStatus,
    MigrationConfig,
    MigrationError,
    RunOptions,
    State,
    Target,
    apply,
    inspect,
    load_config,
)
from costudy_pipelines.lib.migrations.promotion import drift_across
from costudy_pipelines.lib.migrations.runner import default_actor

GROUP = "schema_migrations"


def schema_asset_key(database: str, environment: str) -> dg.AssetKey:
    return dg.AssetKey(f"{database}_schema_{environment}")


# The project's own database resources, by the variable they read (defined in resources.py).
_PROJECT_RESOURCES = {resource.env_var: key for key, resource in DATABASE_RESOURCES.items()}


def resource_key(environment: Environment) -> str:
    """The PostgresResource reading the environment's variable: the project's own resource
    for a project database, else one these definitions add (`migrations_<variable>_db`)."""
    known = _PROJECT_RESOURCES.get(environment.url_env)
    return known or f"migrations_{re.sub(r'[^a-z0-9]+', '_', environment.url_env.lower())}_db"


def config_resources(config: MigrationConfig) -> dict[str, PostgresResource]:
    """A resource for every variable the config reads that no project resource reads."""
    return {
        resource_key(environment): PostgresResource(
            url=dg.EnvVar(environment.url_env), env_var=environment.url_env
        )
        for database in config.databases
        for environment in database.environments
        if environment.url_env not in _PROJECT_RESOURCES
    }


def _target(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    database: DatabaseMigrations,
    environment: Environment,
) -> Target:
    resource: PostgresResource = getattr(context.resources, resource_key(environment))
    return database.target(environment, url=resource.url, source=resource.env_var)


def _table(records: list[dict], columns: dict[str, str]) -> dg.MetadataValue:
    """A metadata table from plain rows; `columns` maps each name to its Dagster type."""
    return dg.MetadataValue.table(
        [dg.TableRecord(record) for record in records],
        schema=dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in columns.items()]),
    )


def _timings(report: ApplyReport) -> dg.MetadataValue:
    rows = [
        {
            "version": applied.version,
            "file": applied.name,
            "mode": str(applied.mode),
            "statements": applied.statements,
            "ms": applied.execution_ms,
        }
        for applied in report.applied
    ]
    columns = {"version": "int", "file": "string", "mode": "string", "statements": "int"}
    return _table(rows, columns | {"ms": "float"})


def _schema_asset(
    config: MigrationConfig, database: DatabaseMigrations, environment: Environment
) -> dg.AssetsDefinition:
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
        try:
            options = RunOptions(
                lock_timeout_s=config.lock_timeout_s,
                backup_dir=config.backup_dir,
                actor=f"dagster run {context.run.run_id[:8]} ({default_actor()})",
                upstream=_target(context, database, upstream) if upstream else None,
                progress=context.log.info,
            )
            migrations = database.discover()
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
) -> EnvironmentStatus:
    """The environment's state; a folder that cannot be read shows as the status's error."""
    try:
        target = _target(context, database, environment)
        migrations = database.discover()
    except MigrationError as exc:
        unresolved = Target(database.name, environment.name, "", environment.url_env)
        return EnvironmentStatus(unresolved, error=str(exc))
    return inspect(target, migrations, with_catalog=with_catalog)


def _names(status: EnvironmentStatus, *states: State) -> str:
    return ", ".join(s.name for s in status.states if s.state in states) or "none"


def _up_to_date(status: EnvironmentStatus) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not status.count(State.PENDING, State.OUT_OF_ORDER, State.DIRTY),
        metadata={
            "version": status.current_version if status.current_version else "none",
            "files": sum(1 for s in status.states if s.migration is not None),
            "pending": _names(status, State.PENDING, State.OUT_OF_ORDER),
            "dirty": _names(status, State.DIRTY),
        },
    )


def _no_edited_files(status: EnvironmentStatus) -> dg.AssetCheckResult:
    changed = [s for s in status.states if s.state in (State.EDITED, State.MISSING_FILE)]
    details = "\n".join(f"- {s.problem(status.current_version)}" for s in changed)
    return dg.AssetCheckResult(
        passed=not changed,
        metadata={
            "edited": _names(status, State.EDITED),
            "missing_files": _names(status, State.MISSING_FILE),
            "details": dg.MetadataValue.md(details or "none"),
        },
    )


STATE_CHECKS: dict[str, tuple[str, Callable[[EnvironmentStatus], dg.AssetCheckResult]]] = {
    "up_to_date": ("Every file is applied; none is pending or dirty.", _up_to_date),
    "no_edited_files": ("No applied file was edited or deleted since.", _no_edited_files),
}


def _state_check(
    database: DatabaseMigrations, environment: Environment, name: str
) -> dg.AssetChecksDefinition:
    description, evaluate = STATE_CHECKS[name]

    @dg.asset_check(
        asset=schema_asset_key(database.name, environment.name),
        name=name,
        required_resource_keys={resource_key(environment)},
        description=description,
    )
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        status = _inspected(context, database, environment)
        if status.error:
            return dg.AssetCheckResult(passed=False, metadata={"error": status.error})
        return evaluate(status)

    return check


def _drift_check(database: DatabaseMigrations) -> dg.AssetChecksDefinition:
    last = database.environments[-1]
    labels = " → ".join(environment.name for environment in database.environments)

    @dg.asset_check(
        asset=schema_asset_key(database.name, last.name),
        name="environments_agree",
        required_resource_keys={resource_key(environment) for environment in database.environments},
        description=f"{labels}: same applied files, and the same live catalog at the same version.",
    )
    def environments_agree(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        statuses = [
            _inspected(context, database, environment, with_catalog=True)
            for environment in database.environments
        ]
        errors = [status.error for status in statuses if status.error]
        if errors:
            return dg.AssetCheckResult(passed=False, metadata={"error": "; ".join(errors)})
        drift = drift_across(statuses)
        rows = [{"kind": d.kind, "object": d.subject, "detail": d.detail} for d in drift]
        return dg.AssetCheckResult(
            passed=not drift,
            metadata={
                "differences": len(drift),
                "drift": _table(rows, {"kind": "string", "object": "string", "detail": "string"}),
            },
        )

    return environments_agree


def build_migration_defs(config: MigrationConfig) -> dg.Definitions:
    """The schema assets and checks of every database in `config`."""
    assets, checks = [], []
    for database in config.databases:
        for environment in database.environments:
            assets.append(_schema_asset(config, database, environment))
            checks += [_state_check(database, environment, name) for name in STATE_CHECKS]
        if len(database.environments) > 1:
            checks.append(_drift_check(database))
    return dg.Definitions(assets=assets, asset_checks=checks, resources=config_resources(config))


defs = build_migration_defs(load_config())
