"""One day of activity from the sandbox MongoDB server, joined to the course users in a real
course database, through the load engine into a migrated warehouse; the progress view on top."""

from __future__ import annotations

from functools import partial

import psycopg
import pytest

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.loading import FAILED, PARTIAL, SyncFailed
from costudy_pipelines.lib.loading.windows import sync_windows
from costudy_pipelines.lib.views import VIEWS_FOLDER, apply_view, read_view
from costudy_pipelines.sandbox.course_activity import (
    DATABASE,
    activity_truth,
    seed_course_users,
)
from costudy_pipelines.sandbox.servers.faults import Fault
from costudy_pipelines.sandbox.servers.mongo_wire import drop_connection
from costudy_pipelines.sources.course_activity.client import (
    ActivityReader,
    activity_extract,
    course_user_emails,
)
from costudy_pipelines.sources.course_activity.spec import course_activity
from costudy_pipelines_tests.registered import registered
from costudy_pipelines_tests.sources.course_activity.support import busiest_day, window_of

SPEC = registered(course_activity())


@pytest.fixture
def course_engine(world, databases):
    url = databases.create()
    seed_course_users(url, world)
    engine = pg.make_engine(url, source="COURSE_DB_URL")
    yield engine
    engine.dispose()


def sync_day(warehouse_url, server, engine, day, **reader_options):
    """What the asset runs for one partition: the extract through sync_windows."""
    partition = (day.isoformat(), window_of(day))
    with ActivityReader(server.uri, DATABASE, batch_size=7, **reader_options) as reader:
        extract = activity_extract(reader, partial(course_user_emails, engine))
        return next(sync_windows(warehouse_url, SPEC, [partition], extract))


def test_a_day_lands_stored_plus_rejected_and_a_rerun_writes_nothing(
    world, server, course_engine, warehouse_url
):
    day = busiest_day(world)
    truth = activity_truth(world, day)
    assert truth.rejects, "the day should hold bad documents too"

    report = sync_day(warehouse_url, server, course_engine, day)

    assert report.records_in == truth.documents
    assert (report.inserted, report.rejected) == (len(truth.keys), len(truth.rejects))
    assert report.status == PARTIAL  # rejects make a session partial
    with psycopg.connect(warehouse_url) as conn:
        stored = {row[0] for row in conn.execute("select external_id from course_activity")}
        rejected = dict(
            conn.execute(
                "select record_key, reason from sync_rejects where source = %s", (SPEC.name,)
            )
        )
        emails = {
            row[0]
            for row in conn.execute(
                "select u.email from course_activity a join users u on u.id = a.user_id"
            )
        }
    assert stored == truth.keys
    assert set(rejected) == set(truth.rejects)
    assert emails == truth.emails

    again = sync_day(warehouse_url, server, course_engine, day)
    assert (again.written, again.unchanged, again.rejected) == (
        0,
        len(truth.keys),
        len(truth.rejects),
    )


def test_the_progress_view_reconciles_with_the_ground_truth(
    world, server, course_engine, warehouse_url
):
    day = busiest_day(world)
    sync_day(warehouse_url, server, course_engine, day)
    with psycopg.connect(warehouse_url) as conn:
        apply_view(conn, read_view(VIEWS_FOLDER / "course_learning_progress.sql"))
        rows = conn.execute(
            "select email, day, tests_completed, average_wpm, best_accuracy "
            "from course_learning_progress where tests_completed > 0"
        ).fetchall()
    truth = activity_truth(world, day).progress
    found = {
        (email, on): (tests, round(float(wpm), 6), float(best))
        for email, on, tests, wpm, best in rows
    }
    assert found == {
        key: (p.tests_completed, round(p.average_wpm, 6), p.best_accuracy)
        for key, p in truth.items()
    }


def test_a_resumed_read_stores_the_same_day(world, server, course_engine, warehouse_url):
    day = busiest_day(world)
    server.add_fault(drop_connection(on_get_more=1))
    report = sync_day(warehouse_url, server, course_engine, day)
    assert report.inserted == len(activity_truth(world, day).keys)
    assert server.faults.faults[0].fired == 1


def test_a_read_that_keeps_failing_writes_nothing_of_the_partition(
    world, server, course_engine, warehouse_url
):
    day = busiest_day(world)
    server.add_fault(Fault("drop", path="getMore", skip=1))  # pages arrive, then it fails
    with pytest.raises(SyncFailed, match=r"course_analytics\.user_activity"):
        sync_day(warehouse_url, server, course_engine, day, max_resumes=1)
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("select count(*) from course_activity").fetchone()[0] == 0
        status = conn.execute(
            "select status from sync_log where source = %s", (SPEC.name,)
        ).fetchone()[0]
    assert status == FAILED
