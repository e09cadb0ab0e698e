"""`costudy sources env`: the environment variables each registered API source reads (its
spec.py's Api), and whether each is set; `costudy sources drift`: the shape drift history of
the feeds that declare their shape (sync_log's `details -> 'shape'`, lib/loading/drift.py), on
the configured warehouse."""

from __future__ import annotations

import json
import os

import click

from costudy_pipelines.commands.replay import WAREHOUSE_VAR, ReplayGroup
from costudy_pipelines.lib import pg
from costudy_pipelines.lib.environment import load_dotenv_file, prepare_environment
from costudy_pipelines.lib.loading.drift import drift_history
from costudy_pipelines.sources.registry import load_registry


@click.group(cls=ReplayGroup)
def sources() -> None:
    """The registered sources: the variables they read, how their data has looked."""


@sources.command("env")
def sources_env() -> None:
    """Each API source's connection settings and the variable each is read from, and whether
    it is set here (after .env); never a value."""
    load_dotenv_file()  # no database is needed: none is started
    for source in load_registry():
        if source.source.api is None:
            continue
        for setting, variable in source.source.api.environment.items():
            state = "set" if os.environ.get(variable) else "unset"
            click.echo(f"{source.name:<16} {setting:<14} {variable:<28} {state}")


@sources.command("drift")
@click.option(
    "--source", "names", multiple=True, help="A feed (asset) or a source (all its feeds)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def sources_drift(names: tuple[str, ...], as_json: bool) -> None:
    """Every field that appeared, disappeared or changed type in a feed's raw records, with
    the first partition it showed in, an example record id, and how often since."""
    prepare_environment()
    feeds = [f.asset for f in load_registry().select_feeds(names) if f.load.shape is not None]
    with pg.connect(os.environ[WAREHOUSE_VAR], source=WAREHOUSE_VAR, utc=True) as conn:
        history = drift_history(conn, sources=feeds)
    for item in history:
        if as_json:
            click.echo(json.dumps({**item.as_row(), "feed": item.source}, sort_keys=True))
        else:
            click.echo(item.describe())
    watched = ", ".join(sorted(feeds)) or "none"
    click.echo(f"{len(history)} shape change(s) in feeds that declare their shape ({watched})")
