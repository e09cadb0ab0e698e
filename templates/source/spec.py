"""What the source syncs and how: its SOURCE declaration for the registry (plain Python)."""

from costudy_pipelines.lib.loading import LoadSpec
from costudy_pipelines.sources.registry import (
    DAILY_FRESHNESS,
    Feed,
    ReportedCount,
    Schedule,
    Source,
)

from .records import ContactValidator

NAME = __name__.rsplit(".", 2)[-2]  # the folder's name: a copy names itself
NAME_RANK = 20  # after every built-in source; each family needs a rank of its own


def contacts() -> LoadSpec:
    return LoadSpec(NAME, NAME, ContactValidator(), window_column="occurred_at")


def feeds(settings: None) -> tuple[Feed, ...]:
    return (
        Feed(
            contacts(),
            ReportedCount(),  # the API's `total` per day
            f"{NAME}: contacts created on the partition's day, upserted into {NAME}.",
        ),
    )


SOURCE = Source(
    name=NAME,
    title=NAME.replace("_", " ").title(),
    name_rank=NAME_RANK,
    schedule=Schedule.DAILY,
    freshness=DAILY_FRESHNESS,
    owners=("team:data-platform",),
    feeds=feeds,
)
