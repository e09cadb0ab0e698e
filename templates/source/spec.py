"""What the source syncs and how: its SOURCE declaration for the registry (plain Python)."""

from costudy_pipelines.lib.loading import LoadSpec
from costudy_pipelines.sources.registry import (
    DAILY_FRESHNESS,
    Api,
    Feed,
    ReportedCount,
    Schedule,
    Source,
)

from .records import ContactValidator

NAME = __name__.rsplit(".", 2)[-2]  # the folder's name: a copy names itself
# None: its names rank after every ranked source's (sources without one in name order); give
# it a number of its own (1 wins) to rank it before others.
NAME_RANK = None


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


# Its connection settings and the variables they are read from: the generic API builder makes
# its assets and resource (no defs.py); client.py's open_feed reads with them.
API = Api(
    environment={"base_url": f"{NAME.upper()}_API_URL", "token": f"{NAME.upper()}_TOKEN"},
    kinds=frozenset({"api"}),
    pool=f"{NAME}_api",
)

SOURCE = Source(
    name=NAME,
    title=NAME.replace("_", " ").title(),
    name_rank=NAME_RANK,
    schedule=Schedule.DAILY,
    freshness=DAILY_FRESHNESS,
    owners=("team:data-platform",),
    feeds=feeds,
    api=API,
)
