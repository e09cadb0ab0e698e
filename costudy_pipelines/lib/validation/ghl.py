"""GoHighLevel (LeadConnector API v2) contacts, from GET /contacts/ or POST /contacts/search."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from costudy_pipelines.lib.validation.records import Column, SourceModel
from costudy_pipelines.lib.validation.types import ExternalId, OptionalTimestamp, join_name


class GhlContact(SourceModel):
    COLUMNS: ClassVar = (
        Column("location_id", "text"),
        Column("first_name", "text"),
        Column("last_name", "text"),
        Column("phone", "text"),
        Column("tags", "text[]"),
        Column("contact_source", "text"),
        Column("occurred_at", "timestamptz"),
        Column("source_updated_at", "timestamptz"),
    )

    id: ExternalId
    location_id: ExternalId = Field(alias="locationId")
    email: str | None = None
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    full_name: str | None = Field(default=None, alias="name")
    contact_name: str | None = Field(default=None, alias="contactName")
    phone: str | None = None
    tag_list: list[str] | str | None = Field(default=None, alias="tags")
    contact_source: str | None = Field(default=None, alias="source")
    occurred_at: OptionalTimestamp = Field(default=None, alias="dateAdded")
    source_updated_at: OptionalTimestamp = Field(default=None, alias="dateUpdated")

    @property
    def record_key(self) -> str:
        return self.id

    @property
    def tags(self) -> list[str] | None:
        """A list of strings; some exports send one comma-separated string."""
        if isinstance(self.tag_list, str):
            return [tag.strip() for tag in self.tag_list.split(",") if tag.strip()]
        return self.tag_list

    @property
    def email_value(self) -> str | None:
        return self.email

    @property
    def display_name(self) -> str | None:
        return join_name(self.first_name, self.last_name) or self.full_name or self.contact_name

    @property
    def observed_at(self) -> datetime | None:
        return self.source_updated_at or self.occurred_at
