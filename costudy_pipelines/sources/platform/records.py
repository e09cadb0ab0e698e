"""Users of the product platform's database."""

from __future__ import annotations

from typing import Any

from costudy_pipelines.lib.validation.databases import (
    CREATED_KEYS,
    DatabasePersonSchema,
    DatabasePersonValidator,
    first_of,
)
from costudy_pipelines.lib.validation.records import Column, ValidRecord
from costudy_pipelines.lib.validation.types import OptionalTimestamp, source_schema


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
        occurred, updated = first_of(record, CREATED_KEYS), record.get("updated_at")
        values = (record.get("username"), occurred, updated)
        return self.person(record, values, updated or occurred)
