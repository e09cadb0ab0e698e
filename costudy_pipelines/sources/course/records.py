"""Orders and enrollments of the course platform's core database."""

from __future__ import annotations

from typing import Any

from costudy_pipelines.lib.validation.databases import (
    DatabasePersonSchema,
    DatabasePersonValidator,
    first_of,
)
from costudy_pipelines.lib.validation.records import Column
from costudy_pipelines.lib.validation.types import Money, money_amount, source_schema


@source_schema
class CourseOrderSchema(DatabasePersonSchema, total=False):
    status: str | None
    currency: str | None
    total: Money
    total_amount: Money
    amount: Money


class CourseOrderValidator(DatabasePersonValidator):
    schema = CourseOrderSchema
    columns = (
        Column("status", "text"),
        Column("currency", "text"),
        Column("amount", "numeric"),
        Column("occurred_at", "timestamptz"),
    )

    def typed(self, record: dict[str, Any], occurred: Any) -> tuple[Any, ...]:
        money = first_of(record, ("total", "total_amount", "amount"))
        amount = money_amount(money, "total", self.amount_bounds)
        return (record.get("status"), record.get("currency"), amount, occurred)


@source_schema
class CourseEnrollmentSchema(DatabasePersonSchema, total=False):
    course_id: str | None
    status: str | None


class CourseEnrollmentValidator(DatabasePersonValidator):
    schema = CourseEnrollmentSchema
    columns = (
        Column("course_id", "text"),
        Column("status", "text"),
        Column("occurred_at", "timestamptz"),
    )

    def typed(self, record: dict[str, Any], occurred: Any) -> tuple[Any, ...]:
        return (record.get("course_id"), record.get("status"), occurred)
