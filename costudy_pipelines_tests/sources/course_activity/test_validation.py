"""The activity validator: good documents become typed rows, each bad kind a reject with its
reason; the world says which are which."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from costudy_pipelines.lib.validation import Reject, ValidRecord, validate
from costudy_pipelines.sandbox.course_activity import BAD_KINDS, activities, course_users
from costudy_pipelines.sources.course_activity.client import (
    COURSE_USER,
    join_course_users,
    jsonable,
)
from costudy_pipelines.sources.course_activity.records import CourseActivityValidator

REASONS = {
    "missing_user": "userId: missing",
    "unknown_user": "is no user of the course platform",
    "accuracy_out_of_range": "metrics.accuracy: Input should be",
    "negative_wpm": "metrics.wpm: Input should be greater than or equal to 0",
    "wrong_type": "metrics.wpm: Input should be a valid number",
}
VALIDATOR = CourseActivityValidator()


@pytest.fixture(scope="module")
def checked(world) -> list[tuple[object, dict, ValidRecord | Reject]]:
    """(activity, document as read, outcome) for every document of the world."""
    users = {user.id: user.email for user in course_users(world)}
    found = list(activities(world))
    page = [jsonable(activity.document) for activity in found]
    joined = next(join_course_users([page], lambda ids: {i: users[i] for i in ids if i in users}))
    return [(a, doc, validate(VALIDATOR, doc)) for a, doc in zip(found, joined, strict=True)]


def test_every_bad_kind_is_rejected_with_its_reason_and_nothing_else_is(checked):
    reasons = defaultdict(set)
    for activity, document, outcome in checked:
        if activity.reject is None:
            assert isinstance(outcome, ValidRecord), outcome
        else:
            assert isinstance(outcome, Reject)
            assert REASONS[activity.reject] in outcome.reason
            assert outcome.key == document["_id"]  # a reject still names its document
            reasons[activity.reject].add(outcome.reason)
    assert set(reasons) == set(BAD_KINDS)  # the world has every kind


def test_a_good_test_completion_becomes_typed_columns(checked):
    activity, _, outcome = next(
        item
        for item in checked
        if item[0].reject is None and item[0].document["type"] == "test_completion"
    )
    assert isinstance(outcome, ValidRecord)
    metrics = activity.document["metrics"]
    assert outcome.key == str(activity.document["_id"])
    assert outcome.email == activity.user.email
    assert outcome.values == (
        activity.user.id,
        "test_completion",
        Decimal(repr(metrics["wpm"])),
        Decimal(repr(metrics["accuracy"])),
        activity.document["createdAt"],
    )
    assert [column.name for column in VALIDATOR.columns] == [
        "course_user_id",
        "activity_type",
        "wpm",
        "accuracy",
        "occurred_at",
    ]


def good(**changes: object) -> dict:
    document = {
        "_id": "65a9c14ec4f9b5101b9f956e",
        "userId": 7,
        "type": "test_completion",
        "metrics": {"wpm": 40, "accuracy": 99.5},
        "createdAt": datetime(2024, 1, 19, tzinfo=UTC).isoformat(),
        COURSE_USER: {"id": 7, "email": " Ana@Example.com "},
    }
    document.update(changes)
    return document


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"metrics": {"wpm": True, "accuracy": 90}}, "metrics.wpm: Input should be a valid number"),
        ({"metrics": {"wpm": "55", "accuracy": 90}}, "metrics.wpm: Input should be a valid number"),
        ({"metrics": {"wpm": 55, "accuracy": "high"}}, "metrics.accuracy: Input should be"),
        ({"userId": "7"}, "userId: not a course user id (got '7')"),
        ({"_course_user": None}, "userId: 7 is no user of the course platform"),
        ({"type": ""}, "type: String should have at least 1 character"),
        ({"createdAt": "yesterday"}, "createdAt: Input should be a valid datetime"),
        ({"_id": ""}, "_id: Value should have at least 1 item"),
    ],
)
def test_wrong_types_and_missing_parts_are_rejected_with_reasons(changes, reason):
    outcome = validate(VALIDATOR, good(**changes))
    assert isinstance(outcome, Reject)
    assert reason in outcome.reason


def test_a_document_read_without_the_join_is_rejected_saying_so():
    document = good()
    del document[COURSE_USER]
    outcome = validate(VALIDATOR, document)
    assert isinstance(outcome, Reject) and "join_course_users" in outcome.reason


def test_activities_without_scores_and_emails_as_typed_are_accepted():
    outcome = validate(VALIDATOR, good(type="lesson_view", metrics={"seconds": 30}))
    assert isinstance(outcome, ValidRecord)
    assert outcome.email == "ana@example.com"
    assert outcome.values[1:4] == ("lesson_view", None, None)
