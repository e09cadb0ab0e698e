"""Reverse sync website → platform in Dagster (SPEC §4): assets, checks, a sensor, a schedule.

One asset per event type (`reverse_sync/leads`, `.../engagements`, `.../mailing_list`,
`.../support_tickets`), not one multi-asset: each has its own platform table, its own strategy
(and so its own resources), its own failures and metadata, and the sensor can run just the
event types that changed; a multi-asset would have to be subsettable to do the same, for
nothing gained.

Inputs are the website's tables, declared as external assets (`website_db/<table>`: the website
app writes them, we only read), and the platform's schema. Each website table carries a blocking
check that it still has the columns the sync reads. The sync never writes while that check
fails:
- in the same run: every run the sensor and schedule request includes the check, so a failing
  check stops the sync in that run, and the next run checks again before it writes;
- across runs: each sync asset's automation condition (`SYNC_CONDITION`) waits for the blocking
  checks of its inputs. When an input is updated (the platform schema migrated, or the website
  reporting a change to its table through Dagster's API), the sync is requested only once the
  input's latest check result, on the input's latest version, passed; a change the website
  reports is checked again in the same run as the sync (the check's own condition).

Triggers: the sensor `reverse_sync_new_rows` (new or changed rows, webhook pushes), the schedule
`reverse_sync_batch` (periodic retries and catch-up) and one automation-condition sensor per
event type (`reverse_sync_automation_<event type>`, input updates). All are stopped until an
operator starts them: they write into the product platform, which a fresh deployment, a
developer's `dagster dev` or a test instance must not do on its own.

Every run syncs one event type and is tagged `costudy/source=reverse_sync.<event type>`:
dagster.yaml's run queue allows one run per value at a time, so runs of one event type never
overlap (the queue is SPEC §4's queue-style strategy, fed by the sensors and the schedule). An
automation-condition sensor's run tags are fixed, hence one such sensor per event type.

The strategy per event type comes from REVERSE_SYNC_STRATEGIES (see lib/reverse_sync/config);
only assets that write through the API need the `platform_api` resource.
"""

from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from datetime import timedelta

import dagster as dg
import psycopg

from costudy_pipelines.defs._metadata import Metadata
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.reverse_sync import (
    EVENT_TYPES,
    ApiSettings,
    EventType,
    PlatformApiClient,
    SensorCursor,
    Strategy,
    SyncOptions,
    SyncReport,
    find_discrepancies,
    find_triggers,
    strategies_from_env,
    sync_event_type,
)
from costudy_pipelines.lib.reverse_sync.website import missing_columns

GROUP = "reverse_sync"
WEBSITE_GROUP = "website"
BATCH_CRON = "*/30 * * * *"
QUEUE_TAG = "costudy/source"  # dagster.yaml: one run per tag value at a time
EVENT_TAG = "costudy/reverse_sync_event"
TRIGGER_TAG = "costudy/reverse_sync_trigger"
SAMPLE_SIZE = 20
# The platform schema (migrations, defs/migrations.py on the migrations branch): the sync writes
# tables of migrations 007 and 008, so in one run it comes after the schema is applied.
PLATFORM_SCHEMA = dg.AssetKey("platform_schema_dev")

# Run a sync when one of its inputs was updated, but only once every blocking check of its
# inputs passed on the input's latest version (or runs in the same run). Unlike plain eager(),
# an input Dagster never saw materialized does not hold the sync back: the website's tables and
# a schema migrated with `costudy migrate` exist whether or not Dagster recorded them.
SYNC_CONDITION = (
    dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager_once_input_checks_pass")
# The checks run again whenever what they check changed: the website's blocking check on a
# reported change (in the run of the sync it gates), the reflection check after each sync.
CHECK_CONDITION = dg.AutomationCondition.eager()


class PlatformApiResource(dg.ConfigurableResource):
    """The platform's HTTP API (URL and token from PLATFORM_API_URL / PLATFORM_API_TOKEN)."""

    base_url: str
    token: str
    requests_per_second: float = 20.0
    timeout_s: float = 10.0
    max_attempts: int = 5

    def client(self) -> PlatformApiClient:
        return PlatformApiClient(
            ApiSettings(
                base_url=self.base_url,
                token=self.token,
                requests_per_second=self.requests_per_second,
                timeout_s=self.timeout_s,
                max_attempts=self.max_attempts,
            )
        )


class ReverseSyncConfig(dg.Config):
    dry_run: bool = False
    full_refresh: bool = False
    chunk_size: int = 2000
    max_attempts: int = 5
    overlap_minutes: float = 10.0


def website_key(event: EventType) -> dg.AssetKey:
    return dg.AssetKey(["website_db", event.table])


def sync_key(event: EventType) -> dg.AssetKey:
    return dg.AssetKey([GROUP, event.target])


def schema_check_key(event: EventType) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(website_key(event), "has_synced_columns")


def reflected_check_key(event: EventType) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(sync_key(event), "reflected_in_platform")


def _connect(stack: ExitStack, database: PostgresResource) -> psycopg.Connection:
    return stack.enter_context(database.connect(autocommit=True, utc=True))


def _table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        [dg.TableRecord(row) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, "string") for name in columns]),
    )


def _report_metadata(report: SyncReport) -> Metadata:
    attempted = report.written + report.failed + report.dead
    metadata: Metadata = {
        **report.summary(),
        "strategy": report.strategy,
        "dry_run": report.dry_run,
        "success_rate": round(report.written / attempted, 4) if attempted else 1.0,
        "dead_letters_sample": _table(
            [{"source_id": d.source_id, "reason": d.reason} for d in report.dead_letters],
            ("source_id", "reason"),
        ),
    }
    if report.last_synced_at is not None:
        metadata["last_synced_at"] = dg.MetadataValue.timestamp(report.last_synced_at)
    if report.dry_run:
        metadata["planned_sample"] = _table(
            [
                {"operation": p.operation, "source_id": p.source_id, "target": str(p.values)}
                for p in report.planned[:SAMPLE_SIZE]
            ],
            ("operation", "source_id", "target"),
        )
    return metadata


def website_spec(event: EventType) -> dg.AssetSpec:
    return dg.AssetSpec(
        website_key(event),
        group_name=WEBSITE_GROUP,
        kinds={"postgres"},
        description=f"The website's `{event.table}` table (the website app writes it; read only).",
    )


def sync_asset(event: EventType, strategy: Strategy) -> dg.AssetsDefinition:
    resources = {"website_db", "platform_db"} | ({"platform_api"} if strategy == "api" else set())

    @dg.asset(
        key=sync_key(event),
        deps=[website_key(event), PLATFORM_SCHEMA],
        group_name=GROUP,
        required_resource_keys=resources,
        kinds={"postgres", "python"},
        pool="platform_api" if strategy == "api" else None,
        automation_condition=SYNC_CONDITION,
        output_required=False,  # a dry run observes; it does not materialize
        description=(
            f"Website {event.table} synced into the platform's {event.target} ({strategy} "
            "strategy), exactly once per event content, tracked in reverse_sync_tracking."
        ),
    )
    def sync(
        context: dg.AssetExecutionContext, config: ReverseSyncConfig
    ) -> Iterator[dg.MaterializeResult]:
        options = SyncOptions(
            strategy=strategy,
            dry_run=config.dry_run,
            full_refresh=config.full_refresh,
            chunk_size=config.chunk_size,
            max_attempts=config.max_attempts,
            overlap=timedelta(minutes=config.overlap_minutes),
        )
        with ExitStack() as stack:
            website = _connect(stack, context.resources.website_db)
            platform = _connect(stack, context.resources.platform_db)
            api = (
                stack.enter_context(context.resources.platform_api.client())
                if strategy == "api"
                else None
            )
            report = sync_event_type(
                event, website, platform, options, api=api, run_id=context.run.run_id
            )
        context.log.info(f"{event.name}: {report.summary()}")
        metadata = _report_metadata(report)
        if report.dry_run:
            context.log_event(dg.AssetObservation(asset_key=sync_key(event), metadata=metadata))
            return
        yield dg.MaterializeResult(metadata=metadata)

    return sync


def schema_check(event: EventType) -> dg.AssetChecksDefinition:
    reads = ("id", "updated_at", *event.source_columns)

    @dg.asset_check(
        asset=website_key(event),
        name="has_synced_columns",
        blocking=True,
        automation_condition=CHECK_CONDITION,
        required_resource_keys={"website_db"},
        description=f"The website's {event.table} still has every column the sync reads.",
    )
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        with ExitStack() as stack:
            missing = missing_columns(_connect(stack, context.resources.website_db), event)
        if missing is None:
            return dg.AssetCheckResult(
                passed=False, description=f"table {event.table} not found in the website DB"
            )
        return dg.AssetCheckResult(
            passed=not missing,
            metadata={"reads": ", ".join(reads), "missing": ", ".join(missing) or "none"},
        )

    return check


def reflected_check(event: EventType) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=sync_key(event),
        name="reflected_in_platform",
        automation_condition=CHECK_CONDITION,
        required_resource_keys={"website_db", "platform_db"},
        description=(
            f"Every website {event.table} row is in the platform with its current content "
            "(dead letters are counted apart: they are accounted for with a reason)."
        ),
    )
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        with ExitStack() as stack:
            website = _connect(stack, context.resources.website_db)
            platform = _connect(stack, context.resources.platform_db)
            report = find_discrepancies(event, website, platform)
        return dg.AssetCheckResult(
            passed=report.count == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "discrepancies": report.count,
                "checked": report.checked,
                "dead_letters": report.dead_letters,
                **{f"discrepancies_{kind}": n for kind, n in sorted(report.by_kind.items())},
                "sample_keys": dg.MetadataValue.json(report.samples),
            },
        )

    return check


def run_tags(event: EventType, trigger: str) -> dict[str, str]:
    """The tags of every run of one event type (the queue's key among them)."""
    return {QUEUE_TAG: f"reverse_sync.{event.name}", EVENT_TAG: event.name, TRIGGER_TAG: trigger}


def run_request(event: EventType, *, run_key: str, trigger: str) -> dg.RunRequest:
    """A run of one event type: its sync, the blocking check of its input, its reflection check."""
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[sync_key(event)],
        asset_check_keys=[schema_check_key(event), reflected_check_key(event)],
        tags=run_tags(event, trigger),
    )


def automation_sensor(event: EventType) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the conditions of one event type's sync and checks; its runs carry that event
    type's tags, so they queue behind (and ahead of) the sensor's and schedule's runs."""
    return dg.AutomationConditionSensorDefinition(
        f"reverse_sync_automation_{event.name}",
        target=dg.AssetSelection.assets(sync_key(event))
        | dg.AssetSelection.checks(schema_check_key(event), reflected_check_key(event)),
        run_tags=run_tags(event, "automation"),
        default_status=dg.DefaultSensorStatus.STOPPED,  # writes into the platform: opt in
        description=f"Syncs {event.table} when an input was updated and its blocking checks "
        "passed (SYNC_CONDITION).",
    )


def _queued_event_types(instance: dg.DagsterInstance) -> set[str]:
    """Event types with a run waiting to start: it will read everything new when it starts."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED],
            tags={TRIGGER_TAG: ["sensor", "schedule", "automation"]},
        )
    )
    return {run.tags[EVENT_TAG] for run in runs if EVENT_TAG in run.tags}


# The syncs, their checks, and the checks of their inputs (external assets are not selected
# by a group, so their checks are named).
JOB_SELECTION = dg.AssetSelection.groups(GROUP) | dg.AssetSelection.checks_for_assets(
    *(website_key(event) for event in EVENT_TYPES.values())
)


def build_reverse_sync_defs(strategies: Mapping[str, Strategy]) -> dg.Definitions:
    events = list(EVENT_TYPES.values())
    job = dg.define_asset_job(
        "reverse_sync",
        selection=JOB_SELECTION,
        description="Sync website events into the platform (one event type per run).",
    )

    @dg.schedule(
        job=job, cron_schedule=BATCH_CRON, execution_timezone="UTC", name="reverse_sync_batch"
    )
    def batch(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        tick = context.scheduled_execution_time.isoformat()
        return [
            run_request(e, run_key=f"batch:{e.name}:{tick}", trigger="schedule") for e in events
        ]

    @dg.sensor(
        job=job,
        name="reverse_sync_new_rows",
        minimum_interval_seconds=30,
        required_resource_keys={"website_db", "platform_db"},
        description="New or changed website rows, and webhook pushes, start a sync of their "
        "event type at once.",
    )
    def new_rows(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        cursor = SensorCursor.from_json(context.cursor)
        with ExitStack() as stack:
            website = _connect(stack, context.resources.website_db)
            platform = _connect(stack, context.resources.platform_db)
            triggers, advanced = find_triggers(website, platform, events, cursor)
        waiting = _queued_event_types(context.instance)
        requests = [
            run_request(EVENT_TYPES[t.event_type], run_key=t.run_key, trigger="sensor")
            for t in triggers
            if t.event_type not in waiting
        ]
        for trigger in triggers:
            context.log.info(f"{trigger.event_type}: {trigger.reason}")
        if not requests:
            return dg.SensorResult(
                skip_reason="no new website rows or pushes", cursor=advanced.to_json()
            )
        return dg.SensorResult(run_requests=requests, cursor=advanced.to_json())

    return dg.Definitions(
        assets=[
            *(website_spec(e) for e in events),
            *(sync_asset(e, strategies[e.name]) for e in events),
        ],
        asset_checks=[*(schema_check(e) for e in events), *(reflected_check(e) for e in events)],
        jobs=[job],
        schedules=[batch],
        sensors=[new_rows, *(automation_sensor(e) for e in events)],
        resources={
            "platform_api": PlatformApiResource(
                base_url=dg.EnvVar("PLATFORM_API_URL"), token=dg.EnvVar("PLATFORM_API_TOKEN")
            )
        },
    )


defs = build_reverse_sync_defs(strategies_from_env())
