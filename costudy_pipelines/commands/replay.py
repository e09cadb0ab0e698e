"""`costudy rejects list|replay` and `costudy reverse-sync dead-letters list|replay`: the
operator's replays (lib/replay.py), on the configured (default: embedded) databases."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import click

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.embedded_pg import EmbeddedPostgresError
from costudy_pipelines.lib.environment import prepare_environment
from costudy_pipelines.lib.loading import connector
from costudy_pipelines.lib.loading.replay import RejectFilter
from costudy_pipelines.lib.replay import (
    list_feed_rejects,
    replay_dead_letters,
    replay_feed_rejects,
)
from costudy_pipelines.lib.reverse_sync import (
    ApiSettings,
    EventType,
    PlatformApiClient,
    SyncOptions,
    strategies_from_env,
)
from costudy_pipelines.lib.reverse_sync.dead_letters import DeadLetterFilter, list_dead_letters
from costudy_pipelines.sources.config import SourceConfigError
from costudy_pipelines.sources.registry import load_registry

WAREHOUSE_VAR = "WAREHOUSE_DB_URL"
WEBSITE_VAR = "WEBSITE_DB_URL"
PLATFORM_VAR = "PLATFORM_DB_URL"
API_URL_VAR = "PLATFORM_API_URL"
API_TOKEN_VAR = "PLATFORM_API_TOKEN"
KNOWN_ERRORS = (pg.DatabaseConfigError, EmbeddedPostgresError, SourceConfigError, ValueError)


class ReplayGroup(click.Group):
    """Known failures (unknown source, unreachable database) end in one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KNOWN_ERRORS as exc:
            raise click.ClickException(str(exc)) from None


class SinceType(click.ParamType):
    """An ISO-8601 date or time; without an offset, UTC."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO-8601 date or time (2025-01-31, 2025-01-31T08:00)")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def filter_options(source_help: str, id_type: click.ParamType) -> Callable[..., Any]:
    """The filters every list and replay takes: source, reason, ids, since."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        options = (
            click.option("--source", "sources", multiple=True, help=source_help),
            click.option("--reason", help="Only those whose reason contains this (any case)."),
            click.option("--id", "ids", multiple=True, type=id_type, help="Only these ids."),
            click.option("--since", type=SinceType(), help="Only those seen since (UTC)."),
        )
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


REJECT_FILTERS = filter_options(
    "A feed (asset) or a source (all its feeds); repeatable.", click.INT
)
DEAD_LETTER_FILTERS = filter_options(
    "An event type (e.g. demo_requests); repeatable.", click.STRING
)
LIMIT = click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))


def _echo_json(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        click.echo(json.dumps(row, default=str, sort_keys=True))


@click.group(cls=ReplayGroup)
def rejects() -> None:
    """Records that failed validation (sync_rejects): see them, replay them."""


@rejects.command("list")
@REJECT_FILTERS
@LIMIT
def rejects_list(
    sources: tuple[str, ...],
    reason: str | None,
    ids: tuple[int, ...],
    since: datetime | None,
    limit: int,
) -> None:
    """The unresolved rejects, newest first: id, feed, last seen (UTC), times seen, place at
    the source, reason."""
    prepare_environment()
    feeds = [feed.load for feed in load_registry().select_feeds(sources)]
    with pg.connect(os.environ[WAREHOUSE_VAR], source=WAREHOUSE_VAR, utc=True) as conn:
        rows = list_feed_rejects(conn, feeds, RejectFilter(reason, ids, since), limit=limit)
    for row in rows:
        click.echo(
            f"{row['id']:>8}  {row['asset']:<28} {row['last_seen']:%Y-%m-%d %H:%M}  "
            f"x{row['times_seen']:<3} {row['record_key'] or '-':<20} {row['reason']}"
        )
    click.echo(f"{len(rows)} unresolved reject(s)" + (" (limit reached)" * (len(rows) == limit)))


@rejects.command("replay")
@REJECT_FILTERS
def rejects_replay(
    sources: tuple[str, ...], reason: str | None, ids: tuple[int, ...], since: datetime | None
) -> None:
    """Re-validate the selected rejects with each feed's current validator; load those that
    pass (marked resolved), keep the rest with their current reason. One JSON line per feed."""
    prepare_environment()
    registry = load_registry()
    feeds = [feed.load for feed in registry.select_feeds(sources)]
    connect = connector(os.environ[WAREHOUSE_VAR], source=WAREHOUSE_VAR)
    replays = replay_feed_rejects(
        connect, feeds, RejectFilter(reason, ids, since), options=registry.load_options()
    )
    _echo_json([replay.summary() for replay in replays])
    click.echo(f"replayed {sum(r.report.records_in for r in replays)} reject(s)", err=True)


@click.group("reverse-sync", cls=ReplayGroup)
def reverse_sync() -> None:
    """The reverse sync (website → platform) from the command line."""


@reverse_sync.group("dead-letters", cls=ReplayGroup)
def dead_letters() -> None:
    """Events the reverse sync gave up on (status 'dead'): see them, replay them."""


@dead_letters.command("list")
@DEAD_LETTER_FILTERS
@LIMIT
def dead_letters_list(
    sources: tuple[str, ...],
    reason: str | None,
    ids: tuple[str, ...],
    since: datetime | None,
    limit: int,
) -> None:
    """The dead letters, most recently attempted first (times in UTC)."""
    prepare_environment()
    where = DeadLetterFilter(sources, reason, ids, since)
    with pg.connect(os.environ[PLATFORM_VAR], source=PLATFORM_VAR, utc=True) as conn:
        rows = list_dead_letters(conn, where, limit=limit)
    for row in rows:
        click.echo(
            f"{row['event_type']:<20} {row['source_id']:>10}  "
            f"{row['last_attempted_at']:%Y-%m-%d %H:%M}  x{row['attempts']:<3} {row['last_error']}"
        )
    click.echo(f"{len(rows)} dead letter(s)" + (" (limit reached)" * (len(rows) == limit)))


@dead_letters.command("replay")
@DEAD_LETTER_FILTERS
def dead_letters_replay(
    sources: tuple[str, ...], reason: str | None, ids: tuple[str, ...], since: datetime | None
) -> None:
    """Retry the selected dead letters now (each event type with its configured strategy);
    each is delivered once. One JSON line per event type."""
    prepare_environment()
    where = DeadLetterFilter(sources, reason, ids, since)
    strategies = strategies_from_env()
    with ExitStack() as stack:
        website = stack.enter_context(
            pg.connect(os.environ[WEBSITE_VAR], source=WEBSITE_VAR, autocommit=True, utc=True)
        )
        platform = stack.enter_context(
            pg.connect(os.environ[PLATFORM_VAR], source=PLATFORM_VAR, autocommit=True, utc=True)
        )
        client = _api_client(stack) if "api" in strategies.values() else None

        def api(event: EventType) -> PlatformApiClient | None:
            return client if strategies[event.name] == "api" else None

        replays = replay_dead_letters(
            website,
            platform,
            where,
            options=lambda event: SyncOptions(strategy=strategies[event.name]),
            api=api,
        )
    _echo_json([replay.summary() for replay in replays])
    click.echo(f"replayed {sum(len(r.requeued) for r in replays)} dead letter(s)", err=True)


def _api_client(stack: ExitStack) -> PlatformApiClient:
    missing = [var for var in (API_URL_VAR, API_TOKEN_VAR) if not os.environ.get(var)]
    if missing:
        raise ValueError(
            f"{' and '.join(missing)} not set: an event type written through the API "
            "(REVERSE_SYNC_STRATEGIES) needs the platform API's URL and token"
        )
    settings = ApiSettings(base_url=os.environ[API_URL_VAR], token=os.environ[API_TOKEN_VAR])
    return stack.enter_context(PlatformApiClient(settings))
