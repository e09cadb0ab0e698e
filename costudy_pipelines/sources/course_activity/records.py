"""Documents of the course platform's MongoDB `user_activity` collection.

A document arrives JSON-able (lib/clients/mongo_activity.jsonable) and joined to the course
user its `userId` names (`_course_user`, by join_course_users): analytics carry no email, and
the warehouse ties records to people by email. Metrics are strict: analytics are written by
app code without a schema, so a wpm of "fast" or true is a bug upstream, not a format to parse.
"""

from __future__ import annotations

from typing import Annotated, Any, Required

from pydantic import Field, Strict
from typing_extensions import TypedDict

from costudy_pipelines.lib.validation.records import (
    Column,
    SchemaValidator,
    ValidRecord,
    valid_record,
)
from costudy_pipelines.lib.validation.types import (
    ExternalId,
    RecordRejected,
    Timestamp,
    money_amount,
    source_schema,
)

COURSE_USER = "_course_user"  # what join_course_users adds (client.py)
Score = Annotated[float, Strict()]


@source_schema
class ActivityMetrics(TypedDict, total=False):
    wpm: Annotated[Score, Field(ge=0)] | None
    accuracy: Annotated[Score, Field(ge=0, le=100)] | None


@source_schema
class CourseUserRef(TypedDict):
    id: int
    email: str


@source_schema
class ActivitySchema(TypedDict, total=False):
    _id: Required[ExternalId]
    userId: Any  # checked in build(): its absence and wrong types have reasons of their own
    type: Required[Annotated[str, Field(min_length=1)]]
    metrics: ActivityMetrics | None
    createdAt: Required[Timestamp]
    _course_user: CourseUserRef | None


class CourseActivityValidator(SchemaValidator):
    """One activity: its course user (id and email), type, wpm, accuracy and time."""

    schema = ActivitySchema
    id_field = "_id"
    columns = (
        Column("course_user_id", "bigint"),
        Column("activity_type", "text"),
        Column("wpm", "numeric"),
        Column("accuracy", "numeric"),
        Column("occurred_at", "timestamptz"),
    )

    def build(self, record: dict[str, Any]) -> ValidRecord:
        user = _course_user(record)
        metrics = record.get("metrics") or {}
        values = (
            user["id"],
            record["type"],
            money_amount(metrics.get("wpm"), "metrics.wpm"),
            money_amount(metrics.get("accuracy"), "metrics.accuracy"),
            record["createdAt"],
        )
        return valid_record(record["_id"], user["email"], values, observed_at=record["createdAt"])


def _course_user(record: dict[str, Any]) -> CourseUserRef:
    """The course user the document's userId names, or the reason there is none."""
    user_id = record.get("userId")
    if user_id is None:
        raise RecordRejected("userId: missing; cannot tie the activity to a person")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise RecordRejected(f"userId: not a course user id (got {user_id!r})")
    if COURSE_USER not in record:
        raise RecordRejected(
            f"{COURSE_USER}: missing; the document was not joined to the course platform's "
            "users (read it through join_course_users)"
        )
    user = record[COURSE_USER]
    if user is None:
        raise RecordRejected(f"userId: {user_id} is no user of the course platform")
    return user
