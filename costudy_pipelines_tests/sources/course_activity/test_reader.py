"""The activity reader: pymongo against the sandbox server, a day at a time, through faults;
and the join to the course platform's users in a real PostgreSQL course database."""

from __future__ import annotations

import secrets
from itertools import chain

import pytest

from costudy_pipelines.lib import pg
from costudy_pipelines.sandbox.course_activity import (
    DATABASE,
    UNKNOWN_USER_IDS,
    activity_server,
    activity_truth,
    course_users,
    seed_course_users,
)
from costudy_pipelines.sandbox.servers.faults import Fault
from costudy_pipelines.sandbox.servers.mongo_wire import cursor_not_found, drop_connection
from costudy_pipelines.sources.course_activity.client import (
    COURSE_USER,
    ActivityReader,
    ActivityReadError,
    course_user_emails,
    join_course_users,
)
from costudy_pipelines_tests.sources.course_activity.support import busiest_day, window_of

BATCH = 4


def read_day(server, day, **options) -> list[list[dict]]:
    with ActivityReader(server.uri, DATABASE, batch_size=BATCH, **options) as reader:
        return list(reader.pages(window_of(day)))


def test_a_days_pages_are_exactly_its_documents_in_id_order_as_json(world, server):
    day = busiest_day(world)
    truth = activity_truth(world, day)

    pages = read_day(server, day)

    documents = list(chain.from_iterable(pages))
    ids = [document["_id"] for document in documents]
    assert set(ids) == truth.keys | set(truth.rejects)
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == truth.documents
    assert all(len(page) == BATCH for page in pages[:-1]) and 0 < len(pages[-1]) <= BATCH
    first = documents[0]
    assert isinstance(first["_id"], str) and len(first["_id"]) == 24
    assert first["createdAt"].startswith(day.isoformat()) and first["createdAt"].endswith("+00:00")


def test_count_is_what_mongodb_holds_for_the_day(world, server):
    day = busiest_day(world)
    with ActivityReader(server.uri, DATABASE) as reader:
        assert reader.count(window_of(day)) == activity_truth(world, day).documents


def test_a_dropped_connection_and_a_lost_cursor_are_resumed_without_gaps_or_repeats(world, server):
    day = busiest_day(world)
    clean = read_day(server, day)
    server.add_fault(drop_connection(on_get_more=2))
    server.add_fault(cursor_not_found(on_get_more=4))

    resumed = read_day(server, day)

    assert list(chain.from_iterable(resumed)) == list(chain.from_iterable(clean))
    assert [fault.fired for fault in server.faults.faults] == [1, 1]
    finds = [entry for entry in server.request_log if entry.command == "find"]
    assert len(finds) == 1 + 3  # the clean read; the faulty one and its two resumes


def test_a_connection_that_keeps_dropping_fails_naming_collection_and_window(world, server):
    day = busiest_day(world)
    server.add_fault(Fault("drop", path="getMore"))  # every getMore, for good
    with pytest.raises(ActivityReadError) as failure:
        read_day(server, day, max_resumes=2)
    message = str(failure.value)
    assert "course_analytics.user_activity" in message
    assert day.isoformat() in message and "gave up after 2 resumes" in message


def test_stopping_early_kills_the_server_cursor(world, server):
    with ActivityReader(server.uri, DATABASE, batch_size=BATCH) as reader:
        pages = reader.pages(window_of(busiest_day(world)))
        next(pages)
        assert server.open_cursors == 1
        pages.close()
    assert server.open_cursors == 0


def test_a_reader_needs_a_database_and_a_positive_batch(server):
    with pytest.raises(ValueError, match="MONGO_DB"):
        ActivityReader(server.uri, "")
    with pytest.raises(ValueError, match="batch_size"):
        ActivityReader(server.uri, DATABASE, batch_size=0)


def test_documents_are_joined_to_course_users_from_postgresql(world, server, fresh_db_url):
    seeded = seed_course_users(fresh_db_url, world)
    users = {user.id: user.email for user in course_users(world)}
    assert seeded == len(users)
    engine = pg.make_engine(fresh_db_url, source="COURSE_DB_URL")
    lookups: list[int] = []

    def emails(ids):
        lookups.append(len(ids))
        return course_user_emails(engine, ids)

    try:
        pages = read_day(server, busiest_day(world))
        joined = list(chain.from_iterable(join_course_users(pages, emails)))
        odd = [{"userId": UNKNOWN_USER_IDS + 1}, {}, {"userId": "1"}, {"userId": True}]
        assert [d[COURSE_USER] for d in next(join_course_users([odd], emails))] == [None] * 4
        assert course_user_emails(engine, []) == {}
    finally:
        engine.dispose()

    assert len(lookups) == len(pages) + 1  # one query per page (the day's, then the odd one)
    for document in joined:
        user = document.get("userId")
        if user in users:
            assert document[COURSE_USER] == {"id": user, "email": users[user]}
        else:  # no userId, or one no user has
            assert document[COURSE_USER] is None


def test_credentials_in_the_uri_reach_the_server(world):
    password = secrets.token_urlsafe(12)
    day = busiest_day(world)
    with activity_server(world, users={"analyst": password}) as server:
        with ActivityReader(server.uri_with("analyst", password), DATABASE) as reader:
            assert reader.count(window_of(day)) == activity_truth(world, day).documents
        with (
            ActivityReader(server.uri, DATABASE) as anonymous,
            pytest.raises(ActivityReadError, match="requires authentication"),
        ):
            anonymous.count(window_of(day))
