"""Rows read from the application databases: marketing website, platform, course platform.

Rows arrive as dicts of column → value (datetime, Decimal, UUID as the driver returns them).
Column names vary between schema versions, so each field accepts its known spellings.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from pydantic import AliasChoices, Field

from costudy_pipelines.lib.validation.records import (
    Column,
    ModelValidator,
    RawRecord,
    SourceModel,
    ValidRecord,
)
from costudy_pipelines.lib.validation.types import (
    ExternalId,
    Money,
    OptionalTimestamp,
    join_name,
    money_amount,
)

EMAIL_NAMES = AliasChoices("email", "user_email", "customer_email")
CREATED_NAMES = ("created_at", "submitted_at", "subscribed_at", "enrolled_at", "voted_at")


class _DatabasePerson(SourceModel):
    id: ExternalId
    email: str | None = Field(default=None, validation_alias=EMAIL_NAMES)
    name: str | None = Field(default=None, validation_alias=AliasChoices("name", "full_name"))
    first_name: str | None = None
    last_name: str | None = None
    occurred_at: OptionalTimestamp = Field(
        default=None, validation_alias=AliasChoices(*CREATED_NAMES)
    )

    @property
    def record_key(self) -> str:
        return self.id

    @property
    def email_value(self) -> str | None:
        return self.email

    @property
    def display_name(self) -> str | None:
        return self.name or join_name(self.first_name, self.last_name)

    @property
    def observed_at(self) -> datetime | None:
        return self.occurred_at


class WebsitePerson(_DatabasePerson):
    COLUMNS: ClassVar = (Column("source_id", "text"), Column("occurred_at", "timestamptz"))

    @property
    def source_id(self) -> str:
        return self.id


WEBSITE_EVENT_KINDS = ("demo_request", "vote", "email_subscription", "contact_submission")


class WebsitePersonValidator(ModelValidator):
    """People behind one kind of website event; external id '<kind>:<row id>'."""

    def __init__(self, event_kind: str) -> None:
        if event_kind not in WEBSITE_EVENT_KINDS:
            raise ValueError(f"unknown website event kind {event_kind!r}: {WEBSITE_EVENT_KINDS}")
        super().__init__(WebsitePerson)
        self.event_kind = event_kind

    def __call__(self, raw: RawRecord) -> ValidRecord:
        record = super().__call__(raw)
        return dataclasses.replace(record, key=f"{self.event_kind}:{record.key}")

    def key(self, raw: RawRecord) -> str | None:
        row_id = super().key(raw)
        return None if row_id is None else f"{self.event_kind}:{row_id}"


class PlatformUser(_DatabasePerson):
    COLUMNS: ClassVar = (
        Column("username", "text"),
        Column("occurred_at", "timestamptz"),
        Column("source_updated_at", "timestamptz"),
    )

    username: str | None = None
    source_updated_at: OptionalTimestamp = Field(default=None, alias="updated_at")

    @property
    def user_name(self) -> str | None:
        return self.username

    @property
    def observed_at(self) -> datetime | None:
        return self.source_updated_at or self.occurred_at


class CourseOrder(_DatabasePerson):
    COLUMNS: ClassVar = (
        Column("status", "text"),
        Column("currency", "text"),
        Column("amount", "numeric"),
        Column("occurred_at", "timestamptz"),
    )

    status: str | None = None
    currency: str | None = None
    money: Money = Field(
        default=None, validation_alias=AliasChoices("total", "total_amount", "amount")
    )

    @property
    def amount(self) -> Decimal | None:
        return money_amount(self.money, "total")


class CourseEnrollment(_DatabasePerson):
    COLUMNS: ClassVar = (
        Column("course_id", "text"),
        Column("status", "text"),
        Column("occurred_at", "timestamptz"),
    )

    course_id: str | None = None
    status: str | None = None
