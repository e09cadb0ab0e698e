"""Replays as Dagster jobs, so an operator can run them from the UI (Launchpad → run config):

- `replay_rejects`: re-validate unresolved rejects (sync_rejects) with each feed's current
  validator and load those that pass (the same as `costudy rejects replay`);
- `replay_dead_letters`: retry the reverse sync's dead letters once the platform recovered
  (the same as `costudy reverse-sync dead-letters replay`).

Both take the CLI's filters as run config (sources, reason, ids, since) and report what they
did as output metadata on the run's page: replayed, resolved/delivered, what is still rejected
or dead by reason, and samples.
"""

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.defs.reverse_sync import PlatformApiResource
from costudy_pipelines.lib.loading import connector
from costudy_pipelines.lib.loading.replay import RejectFilter
from costudy_pipelines.lib.replay import (
    EventReplay,
    FeedReplay,
    replay_dead_letters,
    replay_feed_rejects,
)
from costudy_pipelines.lib.reverse_sync import EventType, Strategy, SyncOptions, strategies_from_env
from costudy_pipelines.lib.reverse_sync.dead_letters import DeadLetterFilter
from costudy_pipelines.sources.registry import load_registry


class ReplayFilter(dg.Config):
    sources: list[str] = Field(default_factory=list)
    """Feeds (assets) or sources for rejects, event types for dead letters; empty: all."""
    reason: str | None = None
    """Only those whose reason contains this text (any case)."""
    since: str | None = None
    """Only those seen at or after this ISO-8601 date or time (UTC without an offset)."""

    def since_time(self) -> datetime | None:
        if not self.since:
            return None
        try:
            parsed = datetime.fromisoformat(self.since)
        except ValueError:
            raise dg.Failure(f"since: {self.since!r} is not an ISO-8601 date or time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ReplayRejectsConfig(ReplayFilter):
    ids: list[int] = Field(default_factory=list)
    """Only these sync_rejects ids."""


class ReplayDeadLettersConfig(ReplayFilter):
    ids: list[str] = Field(default_factory=list)
    """Only these source ids (the website row's id)."""


def _json(value: Sequence[Any] | Mapping[str, Any]) -> dg.MetadataValue:
    return dg.MetadataValue.json(value)


def _rejects_metadata(replays: list[FeedReplay]) -> dict[str, Any]:
    by_reason: dict[str, int] = {}
    for replay in replays:
        for reason, n in replay.still.by_reason.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    samples = [{"asset": r.asset, **s} for r in replays for s in r.still.samples][:20]
    return {
        "replayed": sum(r.report.records_in for r in replays),
        "resolved": sum(r.report.resolved_rejects for r in replays),
        "still_rejected": sum(by_reason.values()),
        "still_rejected_by_reason": _json(by_reason),
        "feeds": _json([r.summary() for r in replays]),
        "still_rejected_samples": _json(samples),
        "see_all": "view rejects_by_reason; `costudy rejects list` (sync_rejects)",
    }


def _dead_letters_metadata(replays: list[EventReplay]) -> dict[str, Any]:
    by_reason: dict[str, int] = {}
    for replay in replays:
        for reason, n in replay.standing.dead_by_reason.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    samples = [{"event_type": r.event_type, **s} for r in replays for s in r.standing.samples]
    return {
        "replayed": sum(len(r.requeued) for r in replays),
        "delivered": sum(r.standing.synced for r in replays),
        "failed_will_retry": sum(r.standing.failed for r in replays),
        "still_dead": sum(by_reason.values()),
        "still_dead_by_reason": _json(by_reason),
        "event_types": _json([r.summary() for r in replays]),
        "still_dead_samples": _json(samples[:20]),
    }


@dg.op(out=dg.Out(dg.Nothing), description="Replay the selected rejects (see the job).")
def replay_selected_rejects(
    context: dg.OpExecutionContext, config: ReplayRejectsConfig, warehouse_db: PostgresResource
) -> dg.Output[None]:
    where = RejectFilter(config.reason, tuple(config.ids), config.since_time())
    registry = load_registry()
    try:
        feeds = [feed.load for feed in registry.select_feeds(config.sources)]
    except ValueError as exc:
        raise dg.Failure(str(exc)) from None
    connect = connector(warehouse_db.url, source=warehouse_db.env_var)
    replays = replay_feed_rejects(
        connect, feeds, where, run_id=context.run.run_id, options=registry.load_options()
    )
    for replay in replays:
        context.log.info(f"{replay.asset}: {replay.summary()}")
    return dg.Output(None, metadata=_rejects_metadata(replays))


def dead_letters_op(strategies: Mapping[str, Strategy]) -> dg.OpDefinition:
    """The op replaying dead letters; it needs the API only if an event type writes through it."""
    uses_api = "api" in strategies.values()
    resources = {"website_db", "platform_db"} | ({"platform_api"} if uses_api else set())

    @dg.op(
        out=dg.Out(dg.Nothing),
        required_resource_keys=resources,
        description="Requeue the selected dead letters and retry them now (see the job).",
    )
    def replay_selected_dead_letters(
        context: dg.OpExecutionContext, config: ReplayDeadLettersConfig
    ) -> dg.Output[None]:
        try:
            where = DeadLetterFilter(
                tuple(config.sources), config.reason, tuple(config.ids), config.since_time()
            )
        except ValueError as exc:
            raise dg.Failure(str(exc)) from None
        with ExitStack() as stack:
            website = stack.enter_context(
                context.resources.website_db.connect(autocommit=True, utc=True)
            )
            platform = stack.enter_context(
                context.resources.platform_db.connect(autocommit=True, utc=True)
            )
            api_resource: PlatformApiResource | None = (
                context.resources.platform_api if uses_api else None
            )
            client = stack.enter_context(api_resource.client()) if api_resource else None

            def options(event: EventType) -> SyncOptions:
                return SyncOptions(strategy=strategies[event.name])

            replays = replay_dead_letters(
                website,
                platform,
                where,
                options=options,
                api=lambda event: client if strategies[event.name] == "api" else None,
                run_id=context.run.run_id,
            )
        for replay in replays:
            context.log.info(f"{replay.event_type}: {replay.summary()}")
        return dg.Output(None, metadata=_dead_letters_metadata(replays))

    return replay_selected_dead_letters


def build_replay_defs(strategies: Mapping[str, Strategy]) -> dg.Definitions:
    @dg.job(
        name="replay_rejects",
        description="Re-validate unresolved rejects with today's validators; load those that "
        "pass (resolved), keep the rest with their reason. Filters: sources, reason, ids, since.",
    )
    def rejects_job() -> None:
        replay_selected_rejects()

    op = dead_letters_op(strategies)

    @dg.job(
        name="replay_dead_letters",
        description="Retry the reverse sync's dead letters once the platform recovered; each "
        "is delivered once. Filters: sources (event types), reason, ids, since.",
    )
    def dead_letters_job() -> None:
        op()

    return dg.Definitions(jobs=[rejects_job, dead_letters_job])


defs = build_replay_defs(strategies_from_env())
