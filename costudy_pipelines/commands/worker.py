"""`costudy worker`: a dagster-celery worker with the project's code and the same Dagster
instance (dagster.yaml, the databases prepared as for every other command)."""

from __future__ import annotations

import os
import socket

import click

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.embedded_pg import EmbeddedPostgresError
from costudy_pipelines.lib.environment import prepare_environment

QUEUE = "dagster"  # dagster-celery routes every step to this queue


@click.command()
@click.option(
    "--name",
    default=lambda: f"costudy-{os.getpid()}",
    help="Worker name (the part before @host) shown in the run's events.  [default: costudy-PID]",
)
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Steps this worker runs at once (one process each).",
)
@click.option("--loglevel", default="INFO", show_default=True)
def worker(name: str, concurrency: int, loglevel: str) -> None:
    """Run steps of runs launched with COSTUDY_EXECUTOR=celery until stopped (SIGTERM: finish
    the current steps first; a killed worker's steps go back to the queue)."""
    try:
        prepare_environment()
        os.environ.setdefault("COSTUDY_EXECUTOR", "celery")
        from costudy_pipelines.defs.executor import describe_connection, worker_app

        app = worker_app()
        click.echo(f"worker {name}@{socket.gethostname()}: {describe_connection()}", err=True)
    except (pg.DatabaseConfigError, EmbeddedPostgresError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    app.worker_main(
        argv=[
            "worker",
            f"--queues={QUEUE}",
            f"--hostname={name}@%h",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            "--without-gossip",  # workers need not know each other; less broker chatter
            "--without-mingle",
        ]
    )
