"""The course platform's MongoDB analytics: `user_activity` documents written by the app for
its users, the users table of the course database whose ids they carry, and ground truth.

    server = activity_server(world).start()      # MongoDB wire protocol on 127.0.0.1
    seed_course_users(course_db_url, world)      # users(id, email, name) in the course DB
    truth = activity_truth(world, date(2024, 2, 1))
    report = world.advance_day(); add_day(world, server)   # the new day's documents

A course user is a person of the world's "course" family; their id is their position in that
family (1-based), so ids never move as newcomers join. Each user's activity is one
deterministic stream from the day they joined (a gap, a type, metrics per document), so the
documents before any moment are the same however far the world has advanced: a new day only
adds documents. About four times the world's malformed rate of documents are bad, the way
schema-less analytics written by app code go wrong (no userId, a userId no user has,
accuracy outside 0-100, a negative wpm, a wpm that is not a number); the world knows which
and why.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from bson.objectid import ObjectId
from psycopg import sql

from costudy_pipelines.lib import pg
from costudy_pipelines.sandbox import seed
from costudy_pipelines.sandbox.draw import Draw, Weighted, mix
from costudy_pipelines.sandbox.people import normalise_email, person
from costudy_pipelines.sandbox.population import MS_PER_DAY
from costudy_pipelines.sandbox.servers.mongo_wire import MongoWireServer
from costudy_pipelines.sandbox.world import World

DATABASE = "course_analytics"
COLLECTION = "user_activity"
BadKind = Literal[
    "missing_user", "unknown_user", "accuracy_out_of_range", "negative_wpm", "wrong_type"
]
BAD_KINDS: tuple[BadKind, ...] = (
    "missing_user",
    "unknown_user",
    "accuracy_out_of_range",
    "negative_wpm",
    "wrong_type",
)
BAD_SHARE_PER_MALFORMED_RATE = 2  # analytics have no schema: more goes wrong than in a table
ACTIVITY_TYPES = Weighted(
    (("lesson_view", 0.45), ("test_completion", 0.35), ("lesson_complete", 0.15), ("login", 0.05))
)
MEAN_GAP_MS = 4 * MS_PER_DAY  # between one user's activities
UNKNOWN_USER_IDS = 900_000_000  # far above any user id a world reaches
_ACTIVITY_CODE = 0x5ACE
USERS_COLUMNS = ("id", "email", "name", "created_at", "updated_at")


@dataclass(frozen=True, slots=True)
class CourseUser:
    id: int
    person: int
    email: str  # canonical (trimmed, lower-case), as the app stores it
    name: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class Activity:
    document: dict[str, Any]  # as stored in MongoDB (ObjectId, aware datetime)
    reject: BadKind | None  # why a correct sync must reject it
    user: CourseUser  # whose stream it came from (its userId may say otherwise when bad)
    created_ms: int

    @property
    def key(self) -> str:
        return str(self.document["_id"])


def world_end_ms(world: World) -> int:
    """The end of the last day that has data."""
    return world.day_start_ms(world.day + 1)


def course_users(world: World) -> Iterator[CourseUser]:
    """The course platform's users, by id."""
    members = world.population.members["course"]
    for position, index in enumerate(members):
        who = person(world.seed, index)
        yield CourseUser(
            position + 1,
            index,
            world.address(index, "course"),
            who.name,
            world.population.record_ms(index, 0),
        )


def activities(
    world: World, start_ms: int | None = None, end_ms: int | None = None
) -> Iterator[Activity]:
    """Every user's activities created within [start_ms, end_ms) (default: all the world has)."""
    until = world_end_ms(world) if end_ms is None else min(end_ms, world_end_ms(world))
    since = world.start_ms if start_ms is None else start_ms
    for user in course_users(world):
        if user.created_ms >= until:
            continue
        for activity in _stream(world, user, until):
            if activity.created_ms >= since:
                yield activity


def _stream(world: World, user: CourseUser, until_ms: int) -> Iterator[Activity]:
    draw = Draw(world.seed, "activity", user.person)
    moment = user.created_ms
    for ordinal in itertools.count():
        moment += 60_000 + draw.below(2 * MEAN_GAP_MS)
        if moment >= until_ms:
            return
        yield _activity(world, user, ordinal, moment, draw)


def _activity(world: World, user: CourseUser, ordinal: int, moment: int, draw: Draw) -> Activity:
    kind = draw.weighted(ACTIVITY_TYPES)
    wpm, accuracy, seconds = draw.between(15, 120), draw.between(500, 1000) / 10, draw.below(1800)
    # drawn for every document, bad or not, so that a stream's later documents never change
    tail = struct.pack("<II", draw.u32(), draw.u32())
    dice = mix(world.seed, _ACTIVITY_CODE, user.person, ordinal)
    bad_share = min(1.0, BAD_SHARE_PER_MALFORMED_RATE * world.config.malformed_rate)
    reject: BadKind | None = None
    if (dice & 0xFFFFFFFF) / 2**32 < bad_share:
        reject = BAD_KINDS[(dice >> 32) % len(BAD_KINDS)]
    if reject in ("accuracy_out_of_range", "negative_wpm", "wrong_type"):
        kind = "test_completion"  # the metrics that can be wrong are a test's
    metrics: dict[str, Any] = {"seconds": seconds}
    if kind == "test_completion":
        # the app writes whole numbers or decimals, as the test scored them
        metrics = {"wpm": wpm if ordinal % 3 else wpm + 0.5, "accuracy": accuracy}
    created = datetime.fromtimestamp(moment / 1000, UTC)
    document: dict[str, Any] = {
        "_id": ObjectId(struct.pack(">I", moment // 1000) + tail),
        "userId": user.id,
        "type": kind,
        "metrics": metrics,
        "createdAt": created,
    }
    if reject is not None:
        _make_bad(document, reject, Draw(world.seed, "activity-bad", user.person, ordinal))
    return Activity(document, reject, user, moment)


def _make_bad(document: dict[str, Any], kind: BadKind, draw: Draw) -> None:
    metrics = document["metrics"]
    if kind == "missing_user":
        del document["userId"]
    elif kind == "unknown_user":
        document["userId"] = UNKNOWN_USER_IDS + draw.below(1_000_000)
    elif kind == "accuracy_out_of_range":
        metrics["accuracy"] = draw.choice((100.5, 250, -3, 1000.0))
    elif kind == "negative_wpm":
        metrics["wpm"] = -draw.between(1, 80)
    else:
        metrics["wpm"] = draw.choice(("fast", "42 wpm", [55], True))


# ------------------------------------------------------------------------------ ground truth
@dataclass(frozen=True)
class Progress:
    """One user's day in the learning-progress view."""

    tests_completed: int
    average_wpm: float | None
    best_accuracy: float | None


@dataclass
class ActivityTruth:
    """What a correct sync of the documents must end up with."""

    keys: set[str] = field(default_factory=set)  # ids (hex) of the documents it stores
    rejects: dict[str, BadKind] = field(default_factory=dict)
    emails: set[str] = field(default_factory=set)  # normalised emails of the users behind them
    progress: dict[tuple[str, date], Progress] = field(default_factory=dict)

    @property
    def documents(self) -> int:
        return len(self.keys) + len(self.rejects)


def activity_truth(world: World, day: date | None = None) -> ActivityTruth:
    """Ground truth for one UTC day's documents, or for all of them."""
    start = end = None
    if day is not None:
        start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        end = start + MS_PER_DAY
    truth = ActivityTruth()
    tests: dict[tuple[str, date], list[tuple[float, float]]] = {}
    for activity in activities(world, start, end):
        if activity.reject is not None:
            truth.rejects[activity.key] = activity.reject
            continue
        truth.keys.add(activity.key)
        email = normalise_email(activity.user.email)
        truth.emails.add(email)
        document = activity.document
        if document["type"] == "test_completion":
            metrics = document["metrics"]
            on = document["createdAt"].date()
            tests.setdefault((email, on), []).append((metrics["wpm"], metrics["accuracy"]))
    for key, scores in tests.items():
        wpms = [wpm for wpm, _ in scores]
        truth.progress[key] = Progress(
            len(scores), sum(wpms) / len(wpms), max(a for _, a in scores)
        )
    return truth


# ------------------------------------------------------------------------- serving and seeding
def activity_server(world: World, **server_options: Any) -> MongoWireServer:
    """A (not yet started) MongoDB server holding every document the world has so far."""
    documents = (activity.document for activity in activities(world))
    return MongoWireServer(DATABASE, {COLLECTION: documents}, **server_options)


def add_day(world: World, server: MongoWireServer) -> int:
    """After `world.advance_day()`: insert the new day's documents; returns how many."""
    day_start = world.day_start_ms(world.day)
    documents = (
        activity.document for activity in activities(world, day_start, day_start + MS_PER_DAY)
    )
    return server.insert(COLLECTION, documents)


def seed_course_users(url: str, world: World, *, source: str = "COURSE_DB_URL") -> int:
    """Create the course database's users table if needed and replace its rows with the
    world's course users (run again after an advanced day: newcomers join)."""
    with pg.connect(url, source=source) as conn:
        conn.execute(seed.schema_sql("course"))
        conn.execute("truncate users")
        copy = sql.SQL("copy users ({}) from stdin").format(
            sql.SQL(", ").join(map(sql.Identifier, USERS_COLUMNS))
        )
        count = 0
        with conn.cursor() as cursor, cursor.copy(copy) as rows:
            for user in course_users(world):
                created = datetime.fromtimestamp(user.created_ms / 1000, UTC)
                rows.write_row((user.id, user.email, user.name, created, created))
                count += 1
        conn.execute(
            "select setval(pg_get_serial_sequence('users', 'id'), coalesce(max(id), 0) + 1, false)"
            " from users"
        )
    return count
