"""Automation for the ingest: the daily sync, new Elective exports, and alerts on failure."""

import hashlib
import json

import dagster as dg
import httpx

from costudy_pipelines.defs.sources import SOURCE_GROUP
from costudy_pipelines.defs.sources.elective import ElectiveDropResource, elective_rows

# Every source and the users table built from them: the partitioned job the schedule runs.
daily_sync_job = dg.define_asset_job(
    "daily_sync",
    selection=dg.AssetSelection.groups(SOURCE_GROUP) | dg.AssetSelection.assets("users"),
    description="Yesterday's partition of every dated source, the full syncs, then users.",
    tags={"costudy/trigger": "schedule"},
)

# At 02:00 UTC, for the day that just ended (the schedule targets the last complete partition).
daily_sync_schedule = dg.build_schedule_from_partitioned_job(
    daily_sync_job, hour_of_day=2, default_status=dg.DefaultScheduleStatus.RUNNING
)


def _files_cursor(cursor: str | None) -> dict[str, int]:
    return json.loads(cursor) if cursor else {}


@dg.sensor(
    asset_selection=[elective_rows.key],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A new or changed Elective export that has finished being written.",
)
def new_elective_exports(
    context: dg.SensorEvaluationContext, elective: ElectiveDropResource
) -> dg.SensorResult | dg.SkipReason:
    scan = elective.reader().scan()
    ready = {path.name: path.stat().st_mtime_ns for path in scan.ready}
    seen = _files_cursor(context.cursor)
    changed = {name: mtime for name, mtime in sorted(ready.items()) if seen.get(name) != mtime}
    waiting = [f"{skipped.path.name}: {skipped.reason}" for skipped in scan.skipped]
    if not changed:
        return dg.SkipReason(
            "no new export" + (f"; still being written: {waiting}" if waiting else "")
        )
    # Run key from the files and their versions: a re-evaluation never launches the same twice.
    run_key = hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:24]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key, tags={"costudy/trigger": "elective-files"})],
        cursor=json.dumps({**seen, **ready}, sort_keys=True),  # only ever grows or moves on
    )


class AlertWebhookResource(dg.ConfigurableResource):
    """An incoming-webhook URL (ALERT_WEBHOOK_URL; the URL is the secret, never logged)."""

    url: str

    def send(self, alert: dict) -> None:
        answer = httpx.post(self.url, json=alert, timeout=10)
        answer.raise_for_status()


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts every failed run (job, run id, failing steps, error) to the alert webhook.",
)
def alert_on_run_failure(
    context: dg.RunFailureSensorContext, alert_webhook: AlertWebhookResource
) -> None:
    run = context.dagster_run
    alert_webhook.send(
        {
            "kind": "run_failure",
            "job": run.job_name,
            "run_id": run.run_id,
            "tags": {key: value for key, value in run.tags.items() if key.startswith("costudy/")},
            "failed_steps": [event.step_key for event in context.get_step_failure_events()],
            "message": (context.failure_event.message or "")[:2000],
        }
    )


defs = dg.Definitions(
    jobs=[daily_sync_job],
    schedules=[daily_sync_schedule],
    sensors=[new_elective_exports, alert_on_run_failure],
    resources={"alert_webhook": AlertWebhookResource(url=dg.EnvVar("ALERT_WEBHOOK_URL"))},
)
