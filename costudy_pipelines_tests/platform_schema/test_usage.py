"""API usage: admission enforces the monthly limit and resets with the month; every recorded
call reaches the monthly summary by trigger."""

from __future__ import annotations

import threading
import time
from datetime import date
from decimal import Decimal

import psycopg
import pytest

from costudy_pipelines_tests.platform_schema.support import (
    add_user,
    admit,
    connect,
    one,
    record_calls,
    usage_stats,
)

JANUARY = "2024-01-01"


def summary(conn: psycopg.Connection, user_id: object) -> dict[date, int]:
    rows = conn.execute(
        "select period_start, request_count from monthly_usage_summary where user_id = %s",
        (user_id,),
    ).fetchall()
    return dict(rows)


def counter(conn: psycopg.Connection, user_id: object) -> tuple[date, int]:
    return conn.execute(
        "select usage_period_start, period_request_count from users where id = %s", (user_id,)
    ).fetchone()


def test_summary_adds_up_every_insert_per_user_and_month(platform: psycopg.Connection) -> None:
    user = add_user(platform, "caller@example.com")
    bystander = add_user(platform, "bystander@example.com")
    record_calls(platform, user, 2, called_at="2024-01-03 10:00Z", response_time_ms=30)
    record_calls(
        platform,
        user,
        1,
        called_at="2024-01-31 23:30Z",
        response_time_ms=90,
        payload_size_bytes=5000,
    )
    record_calls(platform, user, 1, called_at="2024-02-01 00:30Z")

    january = one(
        platform,
        "select * from monthly_usage_summary where user_id = %s and period_start = %s",
        (user, JANUARY),
    )
    assert january["request_count"] == 3
    assert january["total_payload_bytes"] == 100 + 100 + 5000
    assert january["total_response_time_ms"] == 30 + 30 + 90
    assert january["max_response_time_ms"] == 90
    assert january["first_call_at"].isoformat() == "2024-01-03T10:00:00+00:00"
    assert january["last_call_at"].isoformat() == "2024-01-31T23:30:00+00:00"
    assert summary(platform, user) == {date(2024, 1, 1): 3, date(2024, 2, 1): 1}
    assert summary(platform, bystander) == {}


def test_months_are_utc_whatever_the_session_time_zone(platform: psycopg.Connection) -> None:
    platform.execute("set time zone 'America/Los_Angeles'")
    user = add_user(platform, "pacific@example.com")
    # 17:00 on 31 January in Los Angeles is already February in UTC
    record_calls(platform, user, 1, called_at="2024-01-31 17:00-08")
    assert summary(platform, user) == {date(2024, 2, 1): 1}


def test_recording_is_never_refused_so_no_served_call_is_lost(
    platform: psycopg.Connection,
) -> None:
    user = add_user(platform, "served@example.com", monthly_request_limit_override=1)
    record_calls(platform, user, 5, response_time_ms=40)
    stats = usage_stats(platform, user)
    assert (stats["requests_recorded"], stats["payload_bytes_recorded"]) == (5, 500)
    assert (stats["avg_response_time_ms"], stats["requests_used"]) == (40, 0)


def test_limit_is_enforced_and_resets_with_the_next_month(platform: psycopg.Connection) -> None:
    user = add_user(
        platform, "capped@example.com", monthly_request_limit_override=3, usage_period_start=JANUARY
    )
    assert admit(platform, user, 3, at="2024-01-10Z") == [2, 1, 0]

    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as refused:
        admit(platform, user, 1, at="2024-01-31 23:59Z")
    message = str(refused.value)
    assert "capped@example.com" in message and "3 of 3 requests" in message
    assert counter(platform, user) == (date(2024, 1, 1), 3)

    assert admit(platform, user, 2, at="2024-02-01 00:00Z") == [2, 1]
    assert counter(platform, user) == (date(2024, 2, 1), 2)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="closed period"):
        admit(platform, user, 1, at="2024-01-31Z")


def test_a_refused_admission_counts_nothing(platform: psycopg.Connection) -> None:
    user = add_user(platform, "batch@example.com", monthly_request_limit_override=3)
    admit(platform, user, 1)
    with pytest.raises(psycopg.errors.ProgramLimitExceeded):
        admit(platform, user, 3)  # one statement: the third would be the fourth request
    assert usage_stats(platform, user)["requests_used"] == 1


def test_multiplier_and_bonus_credits_raise_the_limit(platform: psycopg.Connection) -> None:
    user = add_user(
        platform,
        "bonus@example.com",
        monthly_request_limit_override=10,
        usage_multiplier=Decimal("1.50"),
        bonus_credits=2,
    )
    assert admit(platform, user, 17)[-1] == 0  # 10 x 1.5 + 2
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="17 of 17"):
        admit(platform, user, 1)
    stats = usage_stats(platform, user)
    assert (stats["effective_request_limit"], stats["requests_used"]) == (17, 17)
    assert stats["requests_remaining"] == 0


def test_unlimited_plan_is_never_refused(platform: psycopg.Connection) -> None:
    user = add_user(platform, "big@example.com", plan="enterprise")
    assert set(admit(platform, user, 1500)) == {None}
    stats = usage_stats(platform, user)
    assert stats["effective_request_limit"] is None and stats["requests_remaining"] is None
    assert stats["requests_used"] == 1500


def test_reads_in_a_new_month_see_no_usage_without_any_reset(
    platform: psycopg.Connection,
) -> None:
    user = add_user(platform, "returning@example.com", usage_period_start=JANUARY)
    admit(platform, user, 7, at="2024-01-15Z")
    record_calls(platform, user, 7, called_at="2024-01-15Z")
    stats = usage_stats(platform, user)
    assert (stats["requests_used"], stats["requests_remaining"], stats["requests_recorded"]) == (
        0,
        1000,
        0,
    )
    assert admit(platform, user, 2) == [999, 998]
    assert usage_stats(platform, user)["requests_used"] == 2


def test_unknown_users_are_refused(platform: psycopg.Connection) -> None:
    nobody = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(psycopg.errors.NoDataFound, match="get_user_usage_stats: no user"):
        usage_stats(platform, nobody)
    with pytest.raises(psycopg.errors.NoDataFound, match="admit_api_call: no user"):
        admit(platform, nobody, 1)


def test_calls_cannot_be_edited(platform: psycopg.Connection) -> None:
    user = add_user(platform, "editor@example.com")
    record_calls(platform, user, 1)
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="append-only"):
        platform.execute("update api_usage set response_time_ms = 0")


def test_metering_is_not_an_edit_of_the_user(platform: psycopg.Connection) -> None:
    """Incremental readers of users (by updated_at) must not re-read a user per API call."""
    user = add_user(platform, "busy@example.com")
    platform.execute("update users set updated_at = '2024-01-01Z' where id = %s", (user,))
    admit(platform, user, 3)
    stamp = "select updated_at::text from users where id = %s"
    assert platform.execute(stamp, (user,)).fetchone()[0] == "2024-01-01 00:00:00+00"
    platform.execute("update users set name = 'Busy Bee' where id = %s", (user,))
    assert platform.execute(stamp, (user,)).fetchone()[0] != "2024-01-01 00:00:00+00"


@pytest.mark.parametrize(
    ("second_at", "refusal"),
    [
        pytest.param("2024-02-20Z", psycopg.errors.ProgramLimitExceeded, id="over-the-limit"),
        pytest.param("2024-01-20Z", psycopg.errors.InvalidParameterValue, id="month-rolled-over"),
    ],
)
def test_concurrent_admissions_see_each_other(
    platform_url: str, second_at: str, refusal: type[psycopg.Error]
) -> None:
    """The second admission waits for the first, then counts from its committed state: it can
    neither race past the limit nor undo the first one's roll-over into a new month."""
    with connect(platform_url) as setup:
        user = add_user(
            setup, "racer@example.com", monthly_request_limit_override=3, usage_period_start=JANUARY
        )
    outcome: list[psycopg.Error | None] = []

    def second_caller() -> None:
        with connect(platform_url) as conn:
            try:
                admit(conn, user, 1, at=second_at)
                outcome.append(None)
            except psycopg.Error as exc:
                outcome.append(exc)

    with connect(platform_url) as first:
        with first.transaction():
            admit(first, user, 3, at="2024-02-10Z")
            racer = threading.Thread(target=second_caller)
            racer.start()
            wait_until_blocked(platform_url)
        racer.join(timeout=30)

    assert len(outcome) == 1 and isinstance(outcome[0], refusal)
    with connect(platform_url) as conn:
        assert counter(conn, user) == (date(2024, 2, 1), 3)


def wait_until_blocked(url: str, timeout_s: float = 10) -> None:
    """Until a session of this database waits for a lock (the first caller's user row)."""
    deadline = time.monotonic() + timeout_s
    with connect(url) as observer:
        while time.monotonic() < deadline:
            waiting = observer.execute(
                "select count(*) from pg_stat_activity "
                "where datname = current_database() and wait_event_type = 'Lock'"
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second caller never waited for the first one's lock")
