"""The sandbox MongoDB server, spoken to by the real pymongo driver over TCP."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import AutoReconnect, CursorNotFound, NetworkTimeout, OperationFailure

from costudy_pipelines.sandbox.course_activity import COLLECTION, DATABASE
from costudy_pipelines.sandbox.servers.faults import Fault
from costudy_pipelines.sandbox.servers.mongo_query import matches
from costudy_pipelines.sandbox.servers.mongo_wire import (
    MongoWireServer,
    cursor_not_found,
    drop_connection,
    slow_get_more,
)
from costudy_pipelines_tests.sources.course_activity.support import busiest_day, window_of


def day_filter(world) -> dict:
    window = window_of(busiest_day(world))
    return {"createdAt": {"$gte": window.start, "$lt": window.end}}


def seeded(server: MongoWireServer, query: dict) -> list[dict]:
    """What the server holds for a query, sorted by _id: computed here, not by the server."""
    chosen = [doc for doc in server.documents(COLLECTION) if matches(doc, query)]
    return sorted(chosen, key=lambda doc: doc["_id"])


def commands(server: MongoWireServer, name: str) -> list:
    return [entry for entry in server.request_log if entry.command == name]


def test_a_range_query_pages_through_getmores_and_returns_exactly_the_seeded_documents(
    world, server, client
):
    query = day_filter(world)
    expected = seeded(server, query)
    assert len(expected) > 10  # several batches of 3

    found = list(client[DATABASE][COLLECTION].find(query).sort("_id", ASCENDING).batch_size(3))

    assert found == expected
    assert len(commands(server, "getMore")) == math.ceil(len(expected) / 3) - 1
    assert server.open_cursors == 0  # the last batch closed the cursor


def test_sort_descending_limit_and_projection(world, server, client):
    query = day_filter(world)
    newest = seeded(server, query)[::-1][:4]
    cursor = client[DATABASE][COLLECTION].find(query, {"type": 1}).sort("_id", DESCENDING)
    found = list(cursor.limit(4).batch_size(3))
    assert found == [{"_id": doc["_id"], "type": doc["type"]} for doc in newest]


def test_in_and_equality_filters_on_other_fields(server, client):
    users = [1, 2, 3]
    query = {"userId": {"$in": users}, "type": "test_completion"}
    found = list(client[DATABASE][COLLECTION].find(query).sort("_id", ASCENDING))
    assert found == seeded(server, query)
    assert found and {doc["userId"] for doc in found} <= set(users)


def test_count_documents_counts_what_find_returns(world, server, client):
    query = day_filter(world)
    collection = client[DATABASE][COLLECTION]
    total = len(seeded(server, query))
    assert collection.count_documents(query) == total
    assert collection.count_documents(query, skip=2, limit=5) == min(5, total - 2)
    assert collection.count_documents({"userId": -1}) == 0
    assert commands(server, "aggregate")[-1].ok


def test_closing_a_cursor_early_kills_it_on_the_server(server, client):
    cursor = client[DATABASE][COLLECTION].find().batch_size(2)
    next(cursor)
    assert server.open_cursors == 1
    cursor.close()
    assert server.open_cursors == 0
    assert [entry.ok for entry in commands(server, "killCursors")] == [True]


def test_two_connections_page_through_their_cursors_side_by_side(server):
    everything = seeded(server, {})
    with (
        MongoClient(server.uri, tz_aware=True) as first,
        MongoClient(server.uri, tz_aware=True) as second,
    ):
        cursors = [
            c[DATABASE][COLLECTION].find().sort("_id", 1).batch_size(5) for c in (first, second)
        ]
        for _ in range(12):  # interleaved getMores on two open connections
            assert next(cursors[0]) == next(cursors[1])
        assert list(cursors[0]) == list(cursors[1]) == everything[12:]


def test_a_connection_dropped_mid_cursor_surfaces_as_autoreconnect_and_the_client_recovers(
    world, server, client
):
    server.add_fault(drop_connection(on_get_more=2))
    collection = client[DATABASE][COLLECTION]
    with pytest.raises(AutoReconnect):
        list(collection.find(day_filter(world)).batch_size(3))
    assert [entry.ok for entry in commands(server, "getMore")] == [True, None]
    assert collection.count_documents({}) == len(server.documents(COLLECTION))


def test_cursor_not_found_is_the_driver_error_and_the_cursor_is_gone(world, server, client):
    server.add_fault(cursor_not_found(on_get_more=1))
    with pytest.raises(CursorNotFound):
        list(client[DATABASE][COLLECTION].find(day_filter(world)).batch_size(3))
    assert server.open_cursors == 0


def test_a_slow_getmore_still_answers_and_a_hung_one_times_out(world, server):
    server.add_fault(slow_get_more(0.05, count=2))
    with MongoClient(server.uri, tz_aware=True) as mongo:
        cursor = mongo[DATABASE][COLLECTION].find(day_filter(world)).sort("_id", 1)
        found = list(cursor.batch_size(3))
    assert found == seeded(server, day_filter(world))
    assert server.faults.faults[0].fired == 2

    server.set_faults(None)
    server.add_fault(Fault("hang", path="getMore", seconds=30, count=1))
    with (
        MongoClient(server.uri, tz_aware=True, socketTimeoutMS=300) as mongo,
        pytest.raises(NetworkTimeout),  # an AutoReconnect: the reader resumes after it
    ):
        list(mongo[DATABASE][COLLECTION].find().batch_size(3))


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c: c.insert_one({"a": 1}), 59),
        (lambda c: list(c.aggregate([{"$lookup": {"from": "x"}}])), 115),
        (lambda c: list(c.find({"type": {"$regex": "^test"}})), 115),
        (lambda c: list(c.find({"$or": [{"a": 1}]})), 115),
        (lambda c: list(c.find().sort("metrics", 1)), 115),
    ],
)
def test_what_is_not_implemented_fails_loudly_with_a_mongodb_error(client, call, code):
    with pytest.raises(OperationFailure) as failure:
        call(client[DATABASE][COLLECTION])
    assert failure.value.code == code
    assert failure.value.details["ok"] == 0


def test_a_uri_with_credentials_for_a_server_without_users_is_refused_with_a_reason(server):
    uri = server.uri_with("analyst", secrets.token_urlsafe(12))
    with (
        MongoClient(uri, serverSelectionTimeoutMS=5000) as mongo,
        pytest.raises(OperationFailure, match="has no users; use a URI without credentials"),
    ):
        mongo.admin.command("ping")


def test_a_server_with_users_reads_only_for_who_proves_the_password():
    password = secrets.token_urlsafe(12)
    documents = [{"_id": n} for n in range(5)]
    with MongoWireServer(DATABASE, {COLLECTION: documents}, users={"analyst": password}) as server:
        uri = server.uri_with("analyst", password)
        with MongoClient(uri, serverSelectionTimeoutMS=5000) as mongo:
            assert list(mongo[DATABASE][COLLECTION].find().batch_size(2)) == documents

        wrong = server.uri_with("analyst", secrets.token_urlsafe(12))
        nobody = server.uri_with("nobody", password)
        for uri in (wrong, nobody):
            with MongoClient(uri, serverSelectionTimeoutMS=5000) as mongo:
                with pytest.raises(OperationFailure) as failure:
                    mongo[DATABASE][COLLECTION].count_documents({})
                assert failure.value.code == 18

        with MongoClient(server.uri, serverSelectionTimeoutMS=5000) as anonymous:
            assert anonymous.admin.command("ping")["ok"] == 1
            with pytest.raises(OperationFailure, match="requires authentication") as failure:
                anonymous[DATABASE][COLLECTION].find_one()
            assert failure.value.code == 13


def test_handshake_commands(client):
    assert client.admin.command("ping")["ok"] == 1
    assert client.admin.command("buildInfo")["version"].startswith("7.")
    assert client.admin.command("hello")["isWritablePrimary"] is True


def test_range_operators_are_type_bracketed_and_null_matches_missing():
    document = {"n": 5, "when": None}
    assert matches(document, {"n": {"$gte": 5, "$lt": 6}})
    assert not matches(document, {"n": {"$gt": "a"}})  # a number never matches a text bound
    assert matches(document, {"missing": None, "when": {"$eq": None}})
    assert matches({"m": {"wpm": 40}}, {"m.wpm": {"$in": [40, 50]}, "$and": [{"m.wpm": 40}]})
    assert not matches({"n": 1}, {"n": {"$nin": [1]}})


def test_the_server_stops_with_clients_still_connected():
    server = MongoWireServer(DATABASE, {COLLECTION: [{"_id": 1}]}).start()
    mongo = MongoClient(server.uri, serverSelectionTimeoutMS=500, timeoutMS=2000)
    assert mongo[DATABASE][COLLECTION].count_documents({}) == 1
    server.stop()
    with pytest.raises(AutoReconnect):
        mongo[DATABASE][COLLECTION].count_documents({})
    mongo.close()
    server.stop()  # twice is fine


def test_the_date_index_answers_range_queries_as_a_scan_would():
    start = datetime(2024, 1, 1, tzinfo=UTC)
    documents = [{"_id": n, "createdAt": start + timedelta(hours=7 * n)} for n in range(40)]
    documents += [
        {"_id": 100, "createdAt": datetime(2024, 1, 3, 12)},  # naive: UTC, as BSON stores it
        {"_id": 101, "createdAt": "2024-01-03T12:00:00Z"},  # text never matches a date bound
        {"_id": 102},
    ]
    query = {"createdAt": {"$gte": start + timedelta(days=2), "$lt": start + timedelta(days=4)}}
    with (
        MongoWireServer(DATABASE, {COLLECTION: documents}) as server,
        MongoClient(server.uri, tz_aware=True) as mongo,
    ):
        collection = mongo[DATABASE][COLLECTION]
        found = [doc["_id"] for doc in collection.find(query).sort("_id", 1)]
        assert found == [doc["_id"] for doc in seeded(server, query)]
        assert 100 in found and 101 not in found

        server.insert(COLLECTION, [{"_id": 200, "createdAt": start + timedelta(days=3)}])
        assert collection.count_documents(query) == len(found) + 1
