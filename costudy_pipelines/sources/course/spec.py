"""The course platform's core database: what it syncs and how (plain Python)."""

from costudy_pipelines.lib.clients.databases import Extract
from costudy_pipelines.lib.count_comparison import SourceTable
from costudy_pipelines.lib.loading import LoadSpec
from costudy_pipelines.sources.course.client import COURSE_ENROLLMENTS, COURSE_ORDERS
from costudy_pipelines.sources.course.records import (
    CourseEnrollmentValidator,
    CourseOrderValidator,
)
from costudy_pipelines.sources.registry import (
    DAILY_FRESHNESS,
    Database,
    DatabaseCount,
    Feed,
    Schedule,
    Source,
)

NAME_RANK = 6
DATABASE = "course"
FEED_EXTRACTS: dict[str, Extract] = {
    "course_orders": COURSE_ORDERS,
    "course_enrollments": COURSE_ENROLLMENTS,
}


def course_orders() -> LoadSpec:
    return LoadSpec(
        "course_orders", "course_orders", CourseOrderValidator(),
        window_column="occurred_at",
    )  # fmt: skip


def course_enrollments() -> LoadSpec:
    return LoadSpec(
        "course_enrollments", "course_enrollments", CourseEnrollmentValidator(),
        window_column="occurred_at",
    )  # fmt: skip


# The course validators read no name: the buyer's name as the order or enrollment shows it.
IDENTITY = {"name": ("user_name",)}


def feeds(settings: None) -> tuple[Feed, ...]:
    counted = f"{DATABASE}_db"
    orders, enrollments = COURSE_ORDERS, COURSE_ENROLLMENTS
    return (
        Feed(
            course_orders(),
            DatabaseCount(
                counted, SourceTable(orders.orders_table, orders.created_column, orders.id_column)
            ),
            "Course orders (with their items) created on the partition's day, into course_orders.",
            identity=IDENTITY,
        ),
        Feed(
            course_enrollments(),
            DatabaseCount(
                counted,
                SourceTable(enrollments.table, enrollments.created_column, enrollments.id_column),
            ),
            "Course enrollments created on the partition's day, into course_enrollments.",
            identity=IDENTITY,
        ),
    )


SOURCE = Source(
    name="course",
    title="Course platform",
    name_rank=NAME_RANK,
    schedule=Schedule.DAILY,
    freshness=DAILY_FRESHNESS,
    owners=("team:data-platform",),
    feeds=feeds,
    database=Database(DATABASE, FEED_EXTRACTS),
)
