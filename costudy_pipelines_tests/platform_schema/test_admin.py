"""Admin functions: only addresses in the admins table may call them, and every call is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from costudy_pipelines_tests.platform_schema.support import (
    add_user,
    admit,
    one,
    record_calls,
    usage_stats,
)

ADMIN = "ops@example.com"


@pytest.fixture
def admin(platform: psycopg.Connection) -> str:
    platform.execute("insert into admins (email, note) values (%s, 'test operator')", (ADMIN,))
    return ADMIN


def audit_trail(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute("select admin_email, action from admin_actions order by id").fetchall()


ADMIN_CALLS = {
    "reset": "select admin_reset_user_usage(%(user)s, %(caller)s)",
    "bonus": "select admin_add_bonus_credits(%(user)s, 50, %(caller)s)",
}


@pytest.mark.parametrize("call", ADMIN_CALLS.values(), ids=ADMIN_CALLS.keys())
def test_callers_outside_the_admins_table_are_refused(
    platform: psycopg.Connection, admin: str, call: str
) -> None:
    user = add_user(platform, "someone@example.com", monthly_request_limit_override=5)
    admit(platform, user, 2)
    for caller in ("someone@example.com", "", None):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="is not an admin"):
            platform.execute(call, {"user": user, "caller": caller})
    stats = usage_stats(platform, user)
    assert (stats["requests_used"], stats["bonus_credits"]) == (2, 0)
    assert audit_trail(platform) == []


def test_admin_rights_come_and_go_with_the_table(platform: psycopg.Connection, admin: str) -> None:
    user = add_user(platform, "customer@example.com")
    grant = {"user": user, "caller": "  OPS@Example.com "}  # matched normalised
    assert platform.execute(ADMIN_CALLS["bonus"], grant).fetchone()[0] == 50
    platform.execute("delete from admins where email = %s", (admin,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        platform.execute(ADMIN_CALLS["bonus"], grant)
    assert usage_stats(platform, user)["bonus_credits"] == 50


def test_reset_lets_a_capped_user_call_again_and_keeps_history(
    platform: psycopg.Connection, admin: str
) -> None:
    user = add_user(platform, "capped@example.com", monthly_request_limit_override=3)
    admit(platform, user, 3)
    record_calls(platform, user, 3)
    with pytest.raises(psycopg.errors.ProgramLimitExceeded):
        admit(platform, user, 1)

    cleared = platform.execute("select admin_reset_user_usage(%s, %s)", (user, admin)).fetchone()[0]
    assert cleared == 3
    assert admit(platform, user, 2) == [2, 1]
    record_calls(platform, user, 2)
    stats = usage_stats(platform, user)
    assert (stats["requests_used"], stats["requests_recorded"]) == (2, 5)
    assert audit_trail(platform) == [(admin, "reset_usage")]
    details = one(platform, "select details from admin_actions")["details"]
    assert details["requests_cleared"] == 3


def test_bonus_credits_raise_the_limit(platform: psycopg.Connection, admin: str) -> None:
    user = add_user(platform, "grateful@example.com", monthly_request_limit_override=2)
    admit(platform, user, 2)
    total = platform.execute("select admin_add_bonus_credits(%s, 3, %s)", (user, admin)).fetchone()[
        0
    ]
    assert total == 3
    assert admit(platform, user, 3) == [2, 1, 0]
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="5 of 5"):
        admit(platform, user, 1)
    assert audit_trail(platform) == [(admin, "add_bonus_credits")]


@pytest.mark.parametrize("credits", [0, -5, None])
def test_bonus_credits_must_be_positive(
    platform: psycopg.Connection, admin: str, credits: int | None
) -> None:
    user = add_user(platform, "greedy@example.com")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="must be a positive number"):
        platform.execute("select admin_add_bonus_credits(%s, %s, %s)", (user, credits, admin))
    assert audit_trail(platform) == []


def test_admin_user_overview(platform: psycopg.Connection, admin: str) -> None:
    referrer = add_user(platform, "referrer@example.com")
    user = add_user(platform, "member@example.com", name="Mem Ber")
    add_user(platform, admin)
    code = platform.execute(
        "select referral_code from users where id = %s", (referrer,)
    ).fetchone()[0]
    platform.execute("select complete_referral(%s, %s)", (user, code))
    now = datetime.now(UTC)
    platform.cursor().executemany(
        "insert into user_sessions (jti, user_id, issued_at, expires_at, revoked_at) "
        "values (%s, %s, %s, %s, %s)",
        [
            ("jti-active-0001", user, now, now + timedelta(hours=1), None),
            ("jti-revoked-001", user, now, now + timedelta(hours=1), now),
            ("jti-expired-001", user, now - timedelta(days=2), now - timedelta(days=1), None),
        ],
    )
    for provider in ("openai", "github"):
        platform.execute(
            "insert into user_tokens (user_id, provider, ciphertext, nonce, key_id) "
            "values (%s, %s, %s, %s, 'k-test')",
            (user, provider, b"\x01" * 40, b"\x02" * 12),
        )
    admit(platform, user, 4)
    record_calls(platform, user, 1)

    row = one(platform, "select * from admin_user_overview where user_id = %s", (user,))
    assert row["name"] == "Mem Ber" and row["referred_by"] == referrer
    assert (row["active_sessions"], row["token_providers"]) == (1, ["github", "openai"])
    assert (row["requests_used"], row["requests_recorded"], row["effective_request_limit"]) == (
        4,
        1,
        1000,
    )
    assert row["last_call_at"] is not None
    flags = dict(platform.execute("select email, is_admin from admin_user_overview").fetchall())
    assert flags == {"referrer@example.com": False, "member@example.com": False, admin: True}
