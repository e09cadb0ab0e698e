"""Validation of the source's records: what a valid contact is, and its typed columns."""

from __future__ import annotations

from typing import Any, Required

from typing_extensions import TypedDict

from costudy_pipelines.lib.validation.records import (
    Column,
    SchemaValidator,
    ValidRecord,
    valid_record,
)
from costudy_pipelines.lib.validation.types import ExternalId, OptionalTimestamp, source_schema


@source_schema
class ContactSchema(TypedDict, total=False):
    id: Required[ExternalId]
    email: str | None
    name: str | None
    created_at: OptionalTimestamp


class ContactValidator(SchemaValidator):
    """A contact: id, email (rejected when missing or malformed), name, creation time."""

    schema = ContactSchema
    columns = (Column("occurred_at", "timestamptz"),)

    def build(self, record: dict[str, Any]) -> ValidRecord:
        created = record.get("created_at")
        return valid_record(
            record["id"], record.get("email"), (created,), name=record.get("name"),
            observed_at=created,
        )  # fmt: skip
