"""The four website events and the platform rows they become (SPEC §4).

An event type is named after its website table (`demo_requests`, ...). Each says which website
columns it reads (these, with `version`, make the content fingerprint), which platform table it
lands in and on which key it is upserted, and how one website row maps to one target row.
Bump `version` when the mapping changes, so every event is written again with the new mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from costudy_pipelines.lib.validation.emails import InvalidEmail, normalise_email, optional_email

SOURCE_SYSTEM = "website"
Strategy = Literal["direct", "api"]
STRATEGIES: tuple[Strategy, ...] = ("direct", "api")

# A website row as read: the columns of `source_columns` plus id, updated_at and fingerprint.
SourceRow = Mapping[str, Any]


class Rejected(ValueError):
    """A website row that cannot become a platform row; the message is the dead letter's reason."""


@dataclass(frozen=True)
class EventType:
    name: str  # = the website table
    source_columns: tuple[str, ...]
    target: str  # = the platform table, and the platform API's kind
    # target column -> SQL type, as jsonb_to_recordset declares it (source_system and
    # source_id are added to every target)
    target_columns: Mapping[str, str]
    conflict: tuple[str, ...]
    to_target: Callable[[SourceRow], dict[str, Any]]
    version: str = "1"
    # how ON CONFLICT DO UPDATE sets a column, when not simply to the new value (`t` is the
    # existing target row, `excluded` the new one)
    update_expressions: Mapping[str, str] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return self.name

    @property
    def all_target_columns(self) -> dict[str, str]:
        return {"source_system": "text", "source_id": "text", **self.target_columns}


def _text(value: object) -> str | None:
    """Free text as typed, but blank is absent."""
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def _required(value: object, what: str) -> str:
    text = _text(value)
    if text is None:
        raise Rejected(f"{what} is empty")
    return text


# A dead letter's reason is shown in Dagster UI metadata: it says what is wrong with the
# address without the address itself (the tracking row names the website row).
def _email(row: SourceRow) -> str:
    try:
        return normalise_email(row["email"])
    except InvalidEmail as exc:
        raise Rejected(exc.reason) from None


def _optional_email(row: SourceRow) -> str | None:
    try:
        return optional_email(row["email"])
    except InvalidEmail as exc:
        raise Rejected(exc.reason) from None


def _lead(row: SourceRow) -> dict[str, Any]:
    # The lead's status is the sales team's workflow in the platform: the sync never sets it.
    return {
        "email": _email(row),
        "name": _text(row["name"]),
        "company": _text(row["company"]),
        "phone": _text(row["phone"]),
        "message": _text(row["content"]),
        "requested_at": row["created_at"],
    }


def _engagement(row: SourceRow) -> dict[str, Any]:
    details = {key: row[key] for key in ("name", "content") if _text(row[key]) is not None}
    return {
        "kind": "feature_vote",
        "subject": _required(row["feature_slug"], "feature_slug"),
        "value": row["value"],
        "email": _optional_email(row),
        "details": details,
        "occurred_at": row["created_at"],
    }


def _subscriber(row: SourceRow) -> dict[str, Any]:
    unsubscribed = row["status"] == "unsubscribed"
    return {
        "email": _email(row),
        "name": _text(row["name"]),
        "status": row["status"],
        "subscribed_at": row["created_at"],
        "unsubscribed_at": row["updated_at"] if unsubscribed else None,
    }


def _ticket(row: SourceRow) -> dict[str, Any]:
    # Like a lead's, a ticket's status belongs to the support team once it exists.
    return {
        "email": _email(row),
        "name": _text(row["name"]),
        "subject": _text(row["subject"]),
        "message": _required(row["content"], "message"),
        "submitted_at": row["created_at"],
    }


BY_SOURCE = ("source_system", "source_id")


def _columns(text_columns: str, **typed: str) -> dict[str, str]:
    """Target columns and their SQL types: the space-separated ones are text."""
    return dict.fromkeys(text_columns.split(), "text") | typed


EVENT_TYPES: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType(
            name="demo_requests",
            source_columns=("email", "name", "company", "phone", "content", "created_at"),
            target="leads",
            target_columns=_columns("email name company phone message", requested_at="timestamptz"),
            conflict=BY_SOURCE,
            to_target=_lead,
        ),
        EventType(
            name="votes",
            source_columns=("email", "name", "feature_slug", "value", "content", "created_at"),
            target="engagements",
            target_columns=_columns(
                "kind subject email", value="integer", details="jsonb", occurred_at="timestamptz"
            ),
            conflict=BY_SOURCE,
            to_target=_engagement,
        ),
        EventType(
            name="email_subscriptions",
            # updated_at dates an unsubscription, so it is part of the content
            source_columns=("email", "name", "status", "created_at", "updated_at"),
            target="mailing_list",
            target_columns=_columns(
                "email name status", subscribed_at="timestamptz", unsubscribed_at="timestamptz"
            ),
            # One entry per address: several subscriptions of one person are one entry.
            conflict=("email",),
            to_target=_subscriber,
            # Unsubscribing keeps the moment it was first seen; resubscribing clears it.
            update_expressions={
                "unsubscribed_at": "case when excluded.status = 'unsubscribed' "
                "then coalesce(t.unsubscribed_at, excluded.unsubscribed_at) end",
            },
        ),
        EventType(
            name="contact_submissions",
            source_columns=("email", "name", "subject", "content", "created_at"),
            target="support_tickets",
            target_columns=_columns("email name subject message", submitted_at="timestamptz"),
            conflict=BY_SOURCE,
            to_target=_ticket,
        ),
    )
}


def event_type(name: str) -> EventType:
    try:
        return EVENT_TYPES[name]
    except KeyError:
        raise ValueError(
            f"unknown reverse-sync event type {name!r}; expected one of {sorted(EVENT_TYPES)}"
        ) from None


def target_values(event: EventType, row: SourceRow) -> dict[str, Any]:
    """The target row for a website row (Rejected when it cannot be one)."""
    return {"source_system": SOURCE_SYSTEM, "source_id": str(row["id"]), **event.to_target(row)}


def json_value(value: object) -> object:
    """JSON for values the mapping produces (timestamps as ISO 8601 with their offset)."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
