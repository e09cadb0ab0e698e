"""`costudy webhook serve`: receive the website's signed pushes into the platform's inbox."""

from __future__ import annotations

import os

import click
import uvicorn

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.embedded_pg import EmbeddedPostgresError
from costudy_pipelines.lib.environment import prepare_environment
from costudy_pipelines.lib.reverse_sync.webhook import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_TOLERANCE_S,
    SECRET_VAR,
    WEBHOOK_PATH,
    create_app,
)

PLATFORM_VAR = "PLATFORM_DB_URL"


@click.group()
def webhook() -> None:
    """The receiver of the website's webhook (pushes that make the reverse sync run sooner)."""


@webhook.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--tolerance",
    default=DEFAULT_TOLERANCE_S,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds a delivery's signed timestamp may be off before it is refused as stale.",
)
@click.option(
    "--max-in-flight",
    default=DEFAULT_MAX_IN_FLIGHT,
    show_default=True,
    type=click.IntRange(min=1),
    help="Deliveries handled at once; beyond it senders get 503 with Retry-After.",
)
def serve(host: str, port: int, tolerance: float, max_in_flight: int) -> None:
    """Serve POST /webhooks/website until interrupted (HMAC-SHA256 signed requests only)."""
    try:
        prepare_environment()
    except (pg.DatabaseConfigError, EmbeddedPostgresError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    secret = os.environ.get(SECRET_VAR, "")
    if not secret:
        raise click.ClickException(
            f"{SECRET_VAR} is not set: the receiver only accepts deliveries signed with it "
            "(set the same secret on the website side)"
        )
    url = os.environ[PLATFORM_VAR]
    app = create_app(
        secret=secret,
        platform_url=url,
        source=PLATFORM_VAR,
        tolerance_s=tolerance,
        max_in_flight=max_in_flight,
    )
    click.echo(f"receiving on http://{host}:{port}{WEBHOOK_PATH} into {pg.mask(url)}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
