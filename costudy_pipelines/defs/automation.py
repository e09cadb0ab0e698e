"""Automation for the ingest: the daily sync and alerts on failure (a source's own triggers,
such as new Elective exports, live in its folder)."""

import dagster as dg
import httpx

from costudy_pipelines.defs._source_assets import SOURCE_GROUP

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
    sensors=[alert_on_run_failure],
    resources={"alert_webhook": AlertWebhookResource(url=dg.EnvVar("ALERT_WEBHOOK_URL"))},
)
