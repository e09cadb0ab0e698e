"""`costudy people review|accept|reject|undo|history`: the operator's review of probable
duplicates (lib/people/review.py) on the configured (default: embedded) warehouse.

A user is named by its id or its email (any spelling: it is normalised as users.email is).
"""

from __future__ import annotations

import os

import click
import psycopg

from costudy_pipelines.commands.replay import WAREHOUSE_VAR, ReplayGroup
from costudy_pipelines.lib import pg
from costudy_pipelines.lib.environment import prepare_environment
from costudy_pipelines.lib.people import review

BY = click.option("--by", required=True, help="Who decides (recorded with the decision).")
WHY = click.option("--why", required=True, help="Why (recorded with the decision).")


def _warehouse() -> psycopg.Connection:
    prepare_environment()
    return pg.connect(os.environ[WAREHOUSE_VAR], source=WAREHOUSE_VAR, utc=True)


@click.group(cls=ReplayGroup)
def people() -> None:
    """Probable duplicates (two emails, one person): review, accept, reject, undo."""


@people.command("review")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
def people_review(limit: int) -> None:
    """Pending candidates, most probable first: both users (id, email, name), the
    probability, the fields that agreed and those that disagreed."""
    with _warehouse() as conn:
        rows = review.pending(conn, limit=limit)
        counts = review.link_counts(conn)
    for c in rows:
        click.echo(f"{c.probability:.3f}  {c.email_a}  ~  {c.email_b}")
        click.echo(f"       names:     {c.name_a or '-'}  |  {c.name_b or '-'}")
        click.echo(f"       agreed:    {', '.join(c.agreed) or '-'}")
        click.echo(f"       disagreed: {', '.join(c.disagreed) or '-'}")
        click.echo(f"       ids:       {c.user_a} {c.user_b}")
    click.echo(
        f"{counts['pending']} pending ({len(rows)} shown), {counts['accepted']} accepted, "
        f"{counts['rejected']} rejected"
    )


def _decide(a: str, b: str, decision: str, by: str, why: str) -> None:
    with _warehouse() as conn:
        first, second = review.resolve_users(conn, [a, b])
        if decision == "undone":
            records = review.undo(conn, [(first, second)], by=by, why=why)
            if not records:
                raise ValueError(f"{a} ~ {b}: no decision to undo")
        else:
            verdict: review.Decision = "accepted" if decision == "accepted" else "rejected"
            records = review.decide(conn, [(first, second)], verdict, by=by, why=why)
            if not records:
                click.echo(f"{a} ~ {b}: already {decision}, nothing changed")
                return
    [record] = records
    click.echo(
        f"{a} ~ {b}: {record.previous or 'pending'} -> "
        f"{'pending' if decision == 'undone' else decision} "
        f"(by {record.decided_by} at {record.decided_at:%Y-%m-%d %H:%M:%S} UTC)"
    )


PAIR = (click.argument("a"), click.argument("b"))
DECISION_COMMANDS = {
    "accept": ("accepted", "A and B (user ids or emails) are one person."),
    "reject": ("rejected", "A and B are two people: the pair is never proposed again."),
    "undo": (
        "undone",
        "Withdraw the decision on A and B: the pair is pending again (the history keeps it).",
    ),
}


def _decision_command(name: str, decision: str, help_text: str) -> click.Command:
    def command(a: str, b: str, by: str, why: str) -> None:
        _decide(a, b, decision, by, why)

    command.__doc__ = help_text
    for decorate in reversed((*PAIR, BY, WHY)):
        command = decorate(command)
    return people.command(name)(command)


for _name, (_decision, _help) in DECISION_COMMANDS.items():
    _decision_command(_name, _decision, _help)


@people.command("history")
@PAIR[0]
@PAIR[1]
def people_history(a: str, b: str) -> None:
    """Every decision on A and B, oldest first (times in UTC)."""
    with _warehouse() as conn:
        first, second = review.resolve_users(conn, [a, b])
        records = review.history(conn, first, second)
    for r in records:
        probability = "-" if r.probability is None else f"{r.probability:.3f}"
        click.echo(
            f"{r.decided_at:%Y-%m-%d %H:%M:%S}  {r.previous or 'pending':>8} -> "
            f"{'pending' if r.decision == 'undone' else r.decision:<8}  p={probability}  "
            f"by {r.decided_by}: {r.reason}"
        )
    click.echo(f"{len(records)} decision(s)")
