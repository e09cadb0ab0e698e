"""complete_referral: +10 credits and +2 % multiplier per referral, capped at 200 %, once each."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import psycopg
import pytest

from costudy_pipelines_tests.platform_schema.support import add_user, one, usage_stats


def code_of(conn: psycopg.Connection, user_id: UUID) -> str:
    return conn.execute("select referral_code from users where id = %s", (user_id,)).fetchone()[0]


def complete(conn: psycopg.Connection, user_id: UUID, code: str) -> tuple[int, int, Decimal]:
    """The referrer's (total_referrals, bonus_credits, usage_multiplier) after the call."""
    return conn.execute(
        "select total_referrals, bonus_credits, usage_multiplier from complete_referral(%s, %s)",
        (user_id, code),
    ).fetchone()


def referrer_state(conn: psycopg.Connection, user_id: UUID) -> tuple[int, int, Decimal]:
    return conn.execute(
        "select total_referrals, bonus_credits, usage_multiplier from users where id = %s",
        (user_id,),
    ).fetchone()


def add_friends(conn: psycopg.Connection, count: int) -> list[UUID]:
    rows = conn.execute(
        "insert into users (email) select 'friend' || n || '@example.com' "
        "from generate_series(1, %s) n returning id",
        (count,),
    ).fetchall()
    return [user_id for (user_id,) in rows]


def test_each_referral_gives_10_credits_and_2_percent(platform: psycopg.Connection) -> None:
    referrer = add_user(platform, "referrer@example.com")
    code = code_of(platform, referrer)
    for number, friend in enumerate(add_friends(platform, 3), start=1):
        expected = (number, 10 * number, Decimal("1.00") + Decimal("0.02") * number)
        assert complete(platform, friend, code.lower()) == expected  # codes are case-blind
    assert referrer_state(platform, referrer) == (3, 30, Decimal("1.06"))

    awards = platform.execute(
        "select status, bonus_credits_awarded, multiplier_awarded from user_referrals "
        "where referrer_id = %s",
        (referrer,),
    ).fetchall()
    assert awards == [("completed", 10, Decimal("0.02"))] * 3
    # the bonuses reach the limit: free plan 1000 x 1.06 + 30
    assert usage_stats(platform, referrer)["effective_request_limit"] == 1090


def test_multiplier_stops_at_200_percent_and_credits_go_on(platform: psycopg.Connection) -> None:
    referrer = add_user(platform, "popular@example.com")
    code = code_of(platform, referrer)
    for friend in add_friends(platform, 51):
        complete(platform, friend, code)

    assert referrer_state(platform, referrer) == (51, 510, Decimal("2.00"))
    last = one(
        platform,
        "select multiplier_awarded, bonus_credits_awarded from user_referrals "
        "where referrer_id = %s order by completed_at desc, id limit 1",
        (referrer,),
    )
    assert last == {"multiplier_awarded": Decimal("0.00"), "bonus_credits_awarded": 10}
    assert usage_stats(platform, referrer)["effective_request_limit"] == 1000 * 2 + 510


def test_the_cap_cuts_the_last_step_short(platform: psycopg.Connection) -> None:
    referrer = add_user(platform, "almost@example.com", usage_multiplier=Decimal("1.99"))
    (friend,) = add_friends(platform, 1)
    assert complete(platform, friend, code_of(platform, referrer)) == (1, 10, Decimal("2.00"))
    awarded = platform.execute("select multiplier_awarded from user_referrals").fetchone()[0]
    assert awarded == Decimal("0.01")


def test_own_code_is_refused(platform: psycopg.Connection) -> None:
    user = add_user(platform, "selfish@example.com")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="their own referral code"):
        complete(platform, user, code_of(platform, user))
    assert referrer_state(platform, user) == (0, 0, Decimal("1.00"))
    assert platform.execute("select count(*) from user_referrals").fetchone()[0] == 0


def test_second_completion_is_refused_and_rewards_nothing(platform: psycopg.Connection) -> None:
    referrer = add_user(platform, "first@example.com")
    other = add_user(platform, "second@example.com")
    (friend,) = add_friends(platform, 1)
    complete(platform, friend, code_of(platform, referrer))

    with pytest.raises(psycopg.errors.UniqueViolation, match="already completed"):
        complete(platform, friend, code_of(platform, referrer))
    with pytest.raises(psycopg.errors.UniqueViolation, match="already completed"):
        complete(platform, friend, code_of(platform, other))
    assert referrer_state(platform, referrer) == (1, 10, Decimal("1.02"))
    assert referrer_state(platform, other) == (0, 0, Decimal("1.00"))


def test_a_pending_referral_completes_only_with_its_own_code(platform: psycopg.Connection) -> None:
    referrer = add_user(platform, "inviter@example.com")
    intruder = add_user(platform, "intruder@example.com")
    (friend,) = add_friends(platform, 1)
    platform.execute(
        "insert into user_referrals (referrer_id, referred_user_id, referral_code) "
        "values (%s, %s, %s)",
        (referrer, friend, code_of(platform, referrer)),
    )
    with pytest.raises(psycopg.errors.UniqueViolation, match="signed up with referral code"):
        complete(platform, friend, code_of(platform, intruder))
    assert complete(platform, friend, code_of(platform, referrer)) == (1, 10, Decimal("1.02"))
    status = platform.execute("select status from user_referrals").fetchone()[0]
    assert status == "completed"


def test_unknown_code_and_unknown_user_are_refused(platform: psycopg.Connection) -> None:
    referrer = add_user(platform, "known@example.com")
    (friend,) = add_friends(platform, 1)
    with pytest.raises(psycopg.errors.NoDataFound, match="no user has referral code 'NOSUCH99'"):
        complete(platform, friend, "NOSUCH99")
    missing = UUID(int=0)
    with pytest.raises(psycopg.errors.NoDataFound, match=f"no user with id {missing}"):
        complete(platform, missing, code_of(platform, referrer))
    assert referrer_state(platform, referrer) == (0, 0, Decimal("1.00"))
