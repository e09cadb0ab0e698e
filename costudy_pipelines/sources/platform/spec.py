"""The platform database: what it syncs and how (plain Python; defs.py wraps it in Dagster)."""

from costudy_pipelines.lib.count_comparison import SourceTable
from costudy_pipelines.lib.loading import LoadSpec
from costudy_pipelines.sources.platform.client import PLATFORM_USERS
from costudy_pipelines.sources.platform.records import PlatformUserValidator
from costudy_pipelines.sources.registry import (
    DAILY_FRESHNESS,
    Database,
    DatabaseCount,
    Feed,
    Schedule,
    Source,
)

NAME_RANK = 4
DATABASE = "platform"
FEED_EXTRACTS = {"platform_users": PLATFORM_USERS}


def platform_users() -> LoadSpec:
    return LoadSpec(
        "platform_users", "platform_users", PlatformUserValidator(),
        window_column="occurred_at",
    )  # fmt: skip


def feeds(settings: None) -> tuple[Feed, ...]:
    extract = PLATFORM_USERS
    return (
        Feed(
            platform_users(),
            DatabaseCount(
                f"{DATABASE}_db",
                SourceTable(extract.table, extract.created_column, extract.id_column),
            ),
            "Platform users created on the partition's day, into platform_users.",
        ),
    )


SOURCE = Source(
    name="platform",
    title="Product platform",
    name_rank=NAME_RANK,
    schedule=Schedule.DAILY,
    freshness=DAILY_FRESHNESS,
    owners=("team:data-platform",),
    feeds=feeds,
    database=Database(DATABASE, FEED_EXTRACTS),
)
