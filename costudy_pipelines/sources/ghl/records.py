"""GoHighLevel (LeadConnector API v2) contacts, from GET /contacts/ or POST /contacts/search."""

from __future__ import annotations

from typing import Any, Required

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


@source_schema
class GhlContactSchema(TypedDict, total=False):
    id: Required[ExternalId]
    locationId: Required[ExternalId]
    email: str | None
    firstName: str | None
    lastName: str | None
    name: str | None
    contactName: str | None
    phone: str | None
    tags: list[str] | str | None
    source: str | None
    dateAdded: OptionalTimestamp
    dateUpdated: OptionalTimestamp


def _tags(value: list[str] | str | None) -> list[str] | None:
    """A list of strings; some exports send one comma-separated string."""
    if isinstance(value, str):
        return [tag.strip() for tag in value.split(",") if tag.strip()]
    return value


class GhlContactValidator(SchemaValidator):
    schema = GhlContactSchema
    columns = (
        Column("location_id", "text"),
        Column("first_name", "text"),
        Column("last_name", "text"),
        Column("phone", "text"),
        Column("tags", "text[]"),
        Column("contact_source", "text"),
        Column("occurred_at", "timestamptz"),
        Column("source_updated_at", "timestamptz"),
    )

    def build(self, record: dict[str, Any]) -> ValidRecord:
        first, last = record.get("firstName"), record.get("lastName")
        added, updated = record.get("dateAdded"), record.get("dateUpdated")
        values = (
            record["locationId"],
            first,
            last,
            record.get("phone"),
            _tags(record.get("tags")),
            record.get("source"),
            added,
            updated,
        )
        name = join_name(first, last) or record.get("name") or record.get("contactName")
        return valid_record(
            record["id"], record.get("email"), values, name=name, observed_at=updated or added
        )
