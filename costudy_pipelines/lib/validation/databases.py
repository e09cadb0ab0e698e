"""Rows read from the application databases: marketing website, platform, course platform.

Rows arrive as dicts of column → value (datetime, Decimal, UUID as the driver returns them).
Column names vary between schema versions, so each field accepts its known spellings.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Required

from typing_extensions import TypedDict

from costudy_pipelines.lib.validation.records import (
    Column,
    RawRecord,
    SchemaValidator,
    ValidRecord,
    valid_record,
)
from costudy_pipelines.lib.validation.types import (
    ExternalId,
    Money,
    OptionalTimestamp,
    join_name,
    money_amount,
    source_schema,
)

EMAIL_KEYS = ("email", "user_email", "customer_email")
CREATED_KEYS = ("created_at", "submitted_at", "subscribed_at", "enrolled_at", "voted_at")


@source_schema
class DatabasePersonSchema(TypedDict, total=False):
    id: Required[ExternalId]
    email: str | None
    user_email: str | None
    customer_email: str | None
    name: str | None
    full_name: str | None
    first_name: str | None
    last_name: str | None
    created_at: OptionalTimestamp
    submitted_at: OptionalTimestamp
    subscribed_at: OptionalTimestamp
    enrolled_at: OptionalTimestamp
    voted_at: OptionalTimestamp


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The first present spelling (0 counts; None and '' do not)."""
    return next((record[key] for key in keys if record.get(key) not in (None, "")), None)


class DatabasePersonValidator(SchemaValidator):
    """A person row: id, email (any known spelling), name or first/last, creation time."""

    schema = DatabasePersonSchema
    columns = (Column("source_id", "text"), Column("occurred_at", "timestamptz"))

    def build(self, record: dict[str, Any]) -> ValidRecord:
        occurred = _first(record, CREATED_KEYS)
        return self.person(record, self.typed(record, occurred), occurred)

    def typed(self, record: dict[str, Any], occurred: Any) -> tuple[Any, ...]:
        return (record["id"], occurred)

    def person(self, record: dict[str, Any], values: tuple, observed: Any) -> ValidRecord:
        name = (
            record.get("name")
            or record.get("full_name")
            or join_name(record.get("first_name"), record.get("last_name"))
        )
        return valid_record(
            record["id"], _first(record, EMAIL_KEYS), values, name=name,
            username=record.get("username"), observed_at=observed,
        )  # fmt: skip


WEBSITE_EVENT_KINDS = ("demo_request", "vote", "email_subscription", "contact_submission")


class WebsitePersonValidator(DatabasePersonValidator):
    """People behind one kind of website event; external id '<kind>:<row id>'."""

    def __init__(self, event_kind: str) -> None:
        if event_kind not in WEBSITE_EVENT_KINDS:
            raise ValueError(f"unknown website event kind {event_kind!r}: {WEBSITE_EVENT_KINDS}")
        super().__init__()
        self.event_kind = event_kind

    def __call__(self, raw: RawRecord) -> ValidRecord:
        record = super().__call__(raw)
        return dataclasses.replace(record, key=f"{self.event_kind}:{record.key}")

    def key(self, raw: RawRecord) -> str | None:
        row_id = super().key(raw)
        return None if row_id is None else f"{self.event_kind}:{row_id}"


@source_schema
class PlatformUserSchema(DatabasePersonSchema, total=False):
    username: str | None
    updated_at: OptionalTimestamp


class PlatformUserValidator(DatabasePersonValidator):
    schema = PlatformUserSchema
    columns = (
        Column("username", "text"),
        Column("occurred_at", "timestamptz"),
        Column("source_updated_at", "timestamptz"),
    )

    def build(self, record: dict[str, Any]) -> ValidRecord:
        occurred, updated = _first(record, CREATED_KEYS), record.get("updated_at")
        values = (record.get("username"), occurred, updated)
        return self.person(record, values, updated or occurred)


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
        money = _first(record, ("total", "total_amount", "amount"))
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
