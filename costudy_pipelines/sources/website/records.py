"""The people behind the website's events (demo requests, votes, subscriptions, contact forms)."""

from __future__ import annotations

import dataclasses

from costudy_pipelines.lib.validation.databases import DatabasePersonValidator
from costudy_pipelines.lib.validation.records import RawRecord, ValidRecord

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
