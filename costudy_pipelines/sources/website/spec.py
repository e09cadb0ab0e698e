"""The website database: what it syncs and how (plain Python; defs.py wraps it in Dagster)."""

from types import MappingProxyType

from costudy_pipelines.lib.count_comparison import SourceTable
from costudy_pipelines.lib.loading import LoadSpec
from costudy_pipelines.sources.registry import (
    DAILY_FRESHNESS,
    Database,
    DatabaseCount,
    Feed,
    Schedule,
    Source,
)
from costudy_pipelines.sources.website.client import EVENT_TABLES
from costudy_pipelines.sources.website.records import WebsitePersonValidator

NAME_RANK = 7
DATABASE = "website"


def website_people(event_kind: str) -> LoadSpec:
    """People behind one kind of website event (demo_request, vote, ...)."""
    return LoadSpec(
        EVENT_TABLES[event_kind].name,
        "website_people",
        WebsitePersonValidator(event_kind),
        scope=MappingProxyType({"event_kind": event_kind}),
        window_column="occurred_at",
    )


# the asset of each event kind -> the table it reads
FEED_EXTRACTS = {extract.name: extract for extract in EVENT_TABLES.values()}


# The website's validators read no name: the event's own name and phone identify its person.
IDENTITY = {"name": ("name",), "phone": ("phone",)}


def feeds(settings: None) -> tuple[Feed, ...]:
    return tuple(
        Feed(
            website_people(kind),
            DatabaseCount(
                f"{DATABASE}_db",
                SourceTable(extract.table, extract.created_column, extract.id_column),
            ),
            f"People behind the website's {extract.table} created on the partition's day, "
            "into website_people.",
            identity=IDENTITY,
        )
        for kind, extract in EVENT_TABLES.items()
    )


SOURCE = Source(
    name="website",
    title="Marketing website",
    name_rank=NAME_RANK,
    schedule=Schedule.DAILY,
    freshness=DAILY_FRESHNESS,
    owners=("team:data-platform",),
    feeds=feeds,
    database=Database(DATABASE, FEED_EXTRACTS),
)
