"""The world's activity documents: deterministic, only ever added to as days pass, and the
course users they name kept in the course database."""

from __future__ import annotations

import psycopg

from costudy_pipelines.sandbox.course_activity import (
    COLLECTION,
    activities,
    activity_server,
    add_day,
    course_users,
    seed_course_users,
)
from costudy_pipelines.sandbox.world import World
from costudy_pipelines_tests.sources.course_activity.support import SMALL


def keys(world: World) -> list[str]:
    return [activity.key for activity in activities(world)]


def test_the_same_seed_makes_the_same_documents(world):
    again = list(activities(World(SMALL)))
    assert [a.document for a in again] == [a.document for a in activities(world)]
    assert len(set(keys(world))) == len(keys(world))


def test_a_new_day_only_adds_that_days_documents(fresh_db_url):
    world = World(SMALL)
    server = activity_server(world)
    before = set(keys(world))
    seed_course_users(fresh_db_url, world)
    first_user = next(course_users(world))

    world.advance_day()
    added = add_day(world, server)
    seeded = seed_course_users(fresh_db_url, world)

    stored = {str(document["_id"]) for document in server.documents(COLLECTION)}
    assert stored == set(keys(world)) and before < stored
    assert added == len(stored - before) > 0
    day = world.end_date
    assert all(
        document["createdAt"].date() == day
        for document in server.documents(COLLECTION)
        if str(document["_id"]) not in before
    )
    users = list(course_users(world))
    assert seeded == len(users) and users[0] == first_user  # newcomers join, ids stay
    with psycopg.connect(fresh_db_url) as conn:
        rows = dict(conn.execute("select id, email from users").fetchall())
    assert rows == {user.id: user.email for user in users}
