"""Rows read from the application databases: marketing website, platform, course platform.

Rows arrive as dicts of column → value (datetime, Decimal, UUID as the driver returns them).
Column names vary between schema versions, so each field accepts its known spellings.
"""

from __future__ import annotations

from typing import Any, ClassVar, Required

from typing_extensions import TypedDict

from costudy_pipelines.lib.validation.records import (
    Column,
    SchemaValidator,
    ValidRecord,
    valid_record,
)
from costudy_pipelines.lib.validation.types import (
    ExternalId,
    OptionalTimestamp,
    join_name,
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


def first_of(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The first present spelling (0 counts; None and '' do not)."""
    return next((record[key] for key in keys if record.get(key) not in (None, "")), None)


class DatabasePersonValidator(SchemaValidator):
    """A person row: id, email (any known spelling), name or first/last, creation time."""

    schema = DatabasePersonSchema
    columns: ClassVar[tuple[Column, ...]] = (
        Column("source_id", "text"),
        Column("occurred_at", "timestamptz"),
    )

    def build(self, record: dict[str, Any]) -> ValidRecord:
        occurred = first_of(record, CREATED_KEYS)
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
            record["id"], first_of(record, EMAIL_KEYS), values, name=name,
            username=record.get("username"), observed_at=observed,
        )  # fmt: skip
