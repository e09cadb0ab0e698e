"""Course activity: what it syncs and how (plain Python; defs.py wraps it in Dagster)."""

from costudy_pipelines.lib.loading import LoadSpec
from costudy_pipelines.sources.course_activity.records import CourseActivityValidator
from costudy_pipelines.sources.registry import (
    DAILY_FRESHNESS,
    Feed,
    ReportedCount,
    Schedule,
    Source,
)

# Activity carries no names: its rank only orders it after every source that does.
NAME_RANK = 8


def course_activity() -> LoadSpec:
    return LoadSpec(
        "course_activity", "course_activity", CourseActivityValidator(),
        window_column="occurred_at",
    )  # fmt: skip


def feeds(settings: None) -> tuple[Feed, ...]:
    return (
        Feed(
            course_activity(),
            ReportedCount(),  # count_documents of the day's createdAt window
            "Course platform activity (MongoDB user_activity) created on the partition's day, "
            "tied to a person through the course platform's users, into course_activity.",
        ),
    )


SOURCE = Source(
    name="course_activity",
    title="Course platform analytics (MongoDB)",
    name_rank=NAME_RANK,
    schedule=Schedule.DAILY,
    freshness=DAILY_FRESHNESS,
    owners=("team:data-platform",),
    feeds=feeds,
)
