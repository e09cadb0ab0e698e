"""The load engine against a real PostgreSQL warehouse: idempotence, change detection, soft
deletes and their guards, one user per email, name priority, rejects, atomicity, sync_log."""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import URL

from costudy_pipelines.lib.loading import (
    FAILED,
    PARTIAL,
    SUCCESS,
    LoadOptions,
    SyncFailed,
    connector,
    replay_rejects,
    sync_session,
)
from costudy_pipelines.lib.loading.canonical import canonical_json
from costudy_pipelines.lib.validation.types import AmountBounds
from costudy_pipelines.sources.course.spec import course_enrollments as spec_course_enrollments
from costudy_pipelines.sources.course.spec import course_orders as spec_course_orders
from costudy_pipelines.sources.elective.records import ElectiveColumns
from costudy_pipelines.sources.elective.spec import elective_rows as spec_elective_rows
from costudy_pipelines.sources.ghl.spec import ghl_contacts as spec_ghl_contacts
from costudy_pipelines.sources.platform.spec import platform_users as spec_platform_users
from costudy_pipelines.sources.sheets.spec import sheet_rows as spec_sheet_rows
from costudy_pipelines.sources.website.spec import website_people as spec_website_people
from costudy_pipelines.sources.whop.records import WhopPaymentValidator
from costudy_pipelines.sources.whop.spec import whop_memberships as spec_whop_memberships
from costudy_pipelines.sources.whop.spec import whop_payments as spec_whop_payments
from costudy_pipelines.sources.whop.spec import whop_users as spec_whop_users
from costudy_pipelines_tests.lib.loading.records import ghl_contact, money, sheet_row, whop_payment
from costudy_pipelines_tests.registered import registered, registry_options

PAYMENTS = registered(spec_whop_payments())
CONTACTS = registered(spec_ghl_contacts())
WHOP_USERS = registered(spec_whop_users())
VOTES = registered(spec_website_people("vote"))
SMALL_CHUNKS = LoadOptions(chunk_size=3)
PRIORITY = registry_options()  # GoHighLevel, Whop, Sheets, ...


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def fingerprint(url: str) -> dict[str, str]:
    """Every row of every table the engine writes, including each row's version (xmin)."""
    tables = ["users", "whop_payments", "ghl_contacts", "sheet_rows", "elective_rows"]
    return {
        table: query(
            url,
            f"select md5(coalesce(string_agg(t::text || xmin::text, '|' order by t::text), ''))"
            f" from {table} t",
        )[0][0]
        for table in tables
    }


def payments(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        whop_payment(f"pay_{i}", f"person{i % 4}@example.com", name=f"Person {i % 4}")
        for i in range(start, start + n)
    ]


def test_rerun_leaves_identical_tables_and_writes_nothing(warehouse_url):
    records = payments(10)
    first = sync_session(warehouse_url, PAYMENTS, records, partition="2025-01-02")
    assert (first.inserted, first.users_created, first.status) == (10, 4, SUCCESS)
    before = fingerprint(warehouse_url)

    again = sync_session(warehouse_url, PAYMENTS, records, partition="2025-01-02")

    assert fingerprint(warehouse_url) == before  # same content and same row versions
    assert (again.inserted, again.updated, again.unchanged, again.written) == (0, 0, 10, 0)
    assert (again.users_created, again.users_updated) == (0, 0)


def test_changed_record_is_updated_and_only_it_is_rewritten(warehouse_url):
    records = payments(6)
    sync_session(warehouse_url, PAYMENTS, records, options=SMALL_CHUNKS)
    versions = dict(query(warehouse_url, "select external_id, xmin::text from whop_payments"))

    records[2] = {**records[2], "status": "refunded", "total": money("12.30")}
    report = sync_session(warehouse_url, PAYMENTS, records, options=SMALL_CHUNKS)

    assert (report.updated, report.unchanged, report.inserted) == (1, 5, 0)
    now = dict(query(warehouse_url, "select external_id, xmin::text from whop_payments"))
    assert [key for key in now if now[key] != versions[key]] == ["pay_2"]
    row = query(
        warehouse_url,
        "select status, amount, raw->'total'->>'amount' from whop_payments"
        " where external_id = 'pay_2'",
    )
    assert row == [("refunded", Decimal("12.30"), "12.30")]


def test_full_sync_soft_deletes_missing_rows_and_revives_returning_ones(warehouse_url):
    records = payments(20)
    sync_session(warehouse_url, PAYMENTS, records, full=True)

    report = sync_session(warehouse_url, PAYMENTS, records[:-1], full=True)
    assert (report.soft_deleted, report.status) == (1, SUCCESS)
    deleted = query(
        warehouse_url, "select external_id from whop_payments where deleted_at is not null"
    )
    assert deleted == [("pay_19",)]
    assert query(warehouse_url, "select count(*) from whop_payments")[0][0] == 20  # never removed

    revived = sync_session(warehouse_url, PAYMENTS, records, full=True)
    assert (revived.updated, revived.soft_deleted) == (1, 0)
    assert (
        query(warehouse_url, "select count(*) from whop_payments where deleted_at is not null")[0][
            0
        ]
        == 0
    )


def test_partitioned_sync_never_soft_deletes(warehouse_url):
    sync_session(warehouse_url, PAYMENTS, payments(5), partition="2025-01-01")
    report = sync_session(warehouse_url, PAYMENTS, payments(1), partition="2025-01-01")
    assert report.soft_deleted == 0
    assert (
        query(warehouse_url, "select count(*) from whop_payments where deleted_at is null")[0][0]
        == 5
    )


def test_empty_extract_never_soft_deletes(warehouse_url):
    sync_session(warehouse_url, PAYMENTS, payments(5), full=True)
    report = sync_session(warehouse_url, PAYMENTS, [], full=True, force_delete=True)
    assert report.soft_deleted == 0 and report.status == PARTIAL
    assert "returned no records" in report.soft_delete_refused
    log = query(warehouse_url, "select status, error_message from sync_log order by id desc")[0]
    assert log[0] == PARTIAL and "returned no records" in log[1]


def test_soft_delete_over_the_share_is_refused_unless_forced(warehouse_url):
    records = payments(20)
    sync_session(warehouse_url, PAYMENTS, records, full=True)

    refused = sync_session(warehouse_url, PAYMENTS, records[:15], full=True)
    assert refused.soft_deleted == 0 and refused.status == PARTIAL
    assert "5 of 20 live rows (25.0%)" in refused.soft_delete_refused
    assert (
        "allowed 10%" in refused.soft_delete_refused
        and "force_delete" in refused.soft_delete_refused
    )
    assert (
        query(warehouse_url, "select count(*) from whop_payments where deleted_at is null")[0][0]
        == 20
    )

    allowed = sync_session(warehouse_url, PAYMENTS, records[:15], full=True, max_delete_share=0.3)
    assert allowed.soft_deleted == 5
    sync_session(warehouse_url, PAYMENTS, records, full=True)
    forced = sync_session(warehouse_url, PAYMENTS, records[:10], full=True, force_delete=True)
    assert forced.soft_deleted == 10 and forced.status == SUCCESS


def test_rejected_record_is_not_soft_deleted_by_a_full_sync(warehouse_url):
    records = payments(10)
    sync_session(warehouse_url, PAYMENTS, records, full=True)
    records[3] = {**records[3], "created_at": "not a time"}  # still at the source, now invalid
    report = sync_session(warehouse_url, PAYMENTS, records, full=True)
    assert (report.rejected, report.soft_deleted, report.status) == (1, 0, PARTIAL)


def owners_of_payments_and_contacts(url: str) -> int:
    return query(
        url,
        "select count(distinct user_id) from (select user_id from whop_payments"
        " union all select user_id from ghl_contacts) x",
    )[0][0]


def test_emails_differing_in_case_and_whitespace_are_one_user(warehouse_url):
    records = [
        whop_payment("pay_1", "Ana@Example.com"),
        whop_payment("pay_2", "  ana@example.COM "),
        whop_payment("pay_3", "ANA@EXAMPLE.COM"),
    ]
    sync_session(warehouse_url, PAYMENTS, records)
    sync_session(warehouse_url, CONTACTS, [ghl_contact("c1", "ana@Example.com ")])
    assert query(warehouse_url, "select email from users") == [("ana@example.com",)]
    assert owners_of_payments_and_contacts(warehouse_url) == 1


def test_an_internationalised_domain_in_either_spelling_is_one_user(warehouse_url):
    """`bücher.de` and its ASCII form `xn--bcher-kva.de` (UTS-46) key the same person."""
    sync_session(warehouse_url, PAYMENTS, [whop_payment("pay_1", "anna@bücher.de")])
    sync_session(warehouse_url, CONTACTS, [ghl_contact("c1", "Anna@XN--BCHER-KVA.de")])

    assert query(warehouse_url, "select email from users") == [("anna@bücher.de",)]
    assert owners_of_payments_and_contacts(warehouse_url) == 1
    assert query(warehouse_url, "select raw->>'email' from ghl_contacts") == [
        ("Anna@XN--BCHER-KVA.de",)  # the raw address is kept as it came
    ]


def user_name(url: str, email: str) -> tuple:
    return query(
        url,
        "select name, name_source, name_source_record, name_updated_at is not null"
        " from users where email = %s",
        (email,),
    )[0]


def test_name_priority_ghl_over_whop_over_sheet_in_any_order(warehouse_url):
    email = "kim@example.com"
    sheet = registered(spec_sheet_rows("sheet-1", "Sheet1"))
    sync_session(
        warehouse_url, sheet, [sheet_row(email, "Kim (sheet)")], full=True, options=PRIORITY
    )
    assert user_name(warehouse_url, email)[:2] == ("Kim (sheet)", "sheets")

    sync_session(warehouse_url, CONTACTS, [ghl_contact("c9", email, first="Kim")], options=PRIORITY)
    assert user_name(warehouse_url, email) == ("Kim", "ghl", "ghl_contacts:c9", True)

    sync_session(
        warehouse_url, PAYMENTS, [whop_payment("pay_9", email, name="Kim W")], options=PRIORITY
    )
    assert user_name(warehouse_url, email)[:2] == ("Kim", "ghl")  # lower priority loses

    other = "lee@example.com"
    sync_session(
        warehouse_url, PAYMENTS, [whop_payment("pay_8", other, name="Lee (whop)")], options=PRIORITY
    )
    sync_session(
        warehouse_url, sheet, [sheet_row(other, "Lee (sheet)")], full=True, options=PRIORITY
    )
    assert user_name(warehouse_url, other)[:3] == ("Lee (whop)", "whop", "whop_payments:pay_8")


def test_a_value_beats_null_and_within_a_source_the_newest_record_wins(warehouse_url):
    email = "max@example.com"
    sync_session(warehouse_url, CONTACTS, [ghl_contact("c1", email)])
    assert user_name(warehouse_url, email)[0] is None
    sync_session(warehouse_url, PAYMENTS, [whop_payment("p1", email, name="Max W")])
    assert user_name(warehouse_url, email)[:2] == ("Max W", "whop")  # value beats null

    older = whop_payment("p0", email, name="Maxim (old)", created_at="2024-01-01T00:00:00Z")
    newer = whop_payment("p2", email, name="Maximilian", created_at="2026-01-01T00:00:00Z")
    sync_session(warehouse_url, PAYMENTS, [newer])
    sync_session(warehouse_url, PAYMENTS, [older])  # backfill of an older partition
    assert user_name(warehouse_url, email)[:3] == ("Maximilian", "whop", "whop_payments:p2")


def test_custom_priority_lets_sheets_win(warehouse_url):
    email = "zoe@example.com"
    options = LoadOptions(name_priority=("sheets", "ghl", "whop"))
    sync_session(warehouse_url, CONTACTS, [ghl_contact("c1", email, first="Zo")])
    sheet = registered(spec_sheet_rows("s", "w"))
    sync_session(warehouse_url, sheet, [sheet_row(email, "Zoë")], full=True, options=options)
    assert user_name(warehouse_url, email)[:2] == ("Zoë", "sheets")


def test_malformed_records_are_rejected_with_reasons_and_the_rest_is_stored(warehouse_url):
    records = [
        *payments(4),
        {**whop_payment("bad_time", "a@b.io"), "created_at": "soon"},
        whop_payment("bad_email", "not-an-email"),
        {**whop_payment("nul", "n@b.io"), "status": "pa\x00id"},
        "not even a record",
    ]
    report = sync_session(warehouse_url, PAYMENTS, records, partition="p1", run_id="run-1")

    assert (report.inserted, report.rejected, report.status) == (4, 4, PARTIAL)
    rejects = dict(
        query(warehouse_url, "select coalesce(record_key, '-'), reason from sync_rejects")
    )
    assert "created_at" in rejects["bad_time"]
    assert rejects["bad_email"] == (  # with the address: the raw record is stored beside it
        "malformed email (An email address must have an @-sign.): 'not-an-email';"
        " cannot tie the record to a person"
    )
    assert "NUL character" in rejects["nul"]
    assert "not a record" in rejects["-"]
    assert {s["key"] for s in report.reject_samples} == {"bad_time", "bad_email", "nul", None}
    stored = query(warehouse_url, "select partition_key, run_id, raw from sync_rejects")
    assert ("p1", "run-1", records[4]) in stored

    sync_session(warehouse_url, PAYMENTS, records, partition="p1", run_id="run-2")
    counts = query(warehouse_url, "select count(*), min(times_seen), max(run_id) from sync_rejects")
    assert counts == [(4, 2, "run-2")]


def test_rejects_replay_after_the_mapping_is_fixed(warehouse_url):
    rows = [
        {"Purchase Date (UTC)": "2025-01-02", "Student Name": "Bo", "Order Total": "10",
         "Buyer E-mail": "bo@x.io"},
        {"Purchase Date (UTC)": "2025-01-03", "Student Name": "Cy", "Order Total": "20",
         "Buyer E-mail": ""},
    ]  # fmt: skip
    default = registered(spec_elective_rows())
    first = sync_session(warehouse_url, default, rows, full=True)
    assert (first.inserted, first.rejected) == (0, 2)

    fixed = registered(spec_elective_rows(ElectiveColumns(email=("Buyer E-mail",))))
    replay = replay_rejects(warehouse_url, fixed, run_id="replay-1")

    assert (replay.records_in, replay.inserted, replay.rejected) == (2, 1, 1)
    assert replay.resolved_rejects == 1
    state = query(
        warehouse_url,
        "select raw->>'Student Name', resolved_by_run, reason from sync_rejects order by id",
    )
    assert state[0][:2] == ("Bo", "replay-1")
    assert state[1][:2] == ("Cy", None) and "no email" in state[1][2]
    assert query(warehouse_url, "select email, amount from elective_rows") == [
        ("bo@x.io", Decimal("10"))
    ]
    assert replay_rejects(warehouse_url, fixed).records_in == 1  # resolved ones stay resolved


UNICODE_AND_SQL = [
    "Robert'); DROP TABLE users;--",
    'Zoë "Zed" Ω \\N \\. \t tab',
    "東京 🚀 line\nbreak, comma|pipe",
    "$$ dollar $$ %s %(name)s {}",
]


@pytest.mark.parametrize("name", UNICODE_AND_SQL)
def test_unicode_and_sql_metacharacters_round_trip(warehouse_url, name):
    record = whop_payment("pay_\\'x", "ünï@exämple.com", name=name, status=name)
    sync_session(warehouse_url, PAYMENTS, [record])
    rows = query(warehouse_url, "select external_id, status, raw from whop_payments")
    assert rows == [("pay_\\'x", name, record)]
    assert query(warehouse_url, "select email, name from users") == [("ünï@exämple.com", name)]
    assert sync_session(warehouse_url, PAYMENTS, [record]).written == 0


def failing_after(records: list[dict], n: int) -> Iterator[dict]:
    """A source that dies mid-extract (e.g. an API error after retries)."""
    yield from records[:n]
    raise ConnectionError("whop API: 502 Bad Gateway after 5 retries")


def test_a_failure_mid_partition_leaves_nothing_and_is_logged(warehouse_url):
    with pytest.raises(SyncFailed) as failure:
        sync_session(
            warehouse_url, PAYMENTS, failing_after(payments(10), 7), options=SMALL_CHUNKS,
            partition="2025-01-02", run_id="run-x",
        )  # fmt: skip
    assert "502 Bad Gateway" in str(failure.value)
    assert failure.value.report.status == FAILED and failure.value.report.records_in >= 6
    for table in ("users", "whop_payments", "sync_rejects"):
        assert query(warehouse_url, f"select count(*) from {table}") == [(0,)]
    log = query(
        warehouse_url,
        "select status, partition_key, run_id, inserted, error_message, completed_at is not null"
        " from sync_log",
    )
    assert log[0][:4] == (FAILED, "2025-01-02", "run-x", 0)
    assert "ConnectionError: whop API: 502 Bad Gateway" in log[0][4] and log[0][5]


def test_a_database_error_in_a_later_chunk_rolls_back_earlier_chunks(warehouse_url):
    with psycopg.connect(warehouse_url) as conn:  # a constraint the engine does not know about
        conn.execute("alter table whop_payments add constraint no_huge check (amount < 1000000)")
    records = payments(9)
    records[7]["total"] = 5_000_000
    with pytest.raises(SyncFailed, match="no_huge"):
        sync_session(warehouse_url, PAYMENTS, records, options=SMALL_CHUNKS)
    assert query(warehouse_url, "select count(*) from whop_payments") == [(0,)]
    assert query(warehouse_url, "select status from sync_log") == [(FAILED,)]


def test_sync_log_counts_match_the_session(warehouse_url):
    records = [*payments(5), payments(1)[0], {"id": "bad"}]  # a duplicate and a reject
    report = sync_session(warehouse_url, PAYMENTS, records, run_id="r1", options=SMALL_CHUNKS)
    log = query(
        warehouse_url,
        "select source, target_table, status, records_processed, inserted, updated, unchanged,"
        " duplicates, rejected, soft_deleted, users_created, duration > interval '0'"
        " from sync_log",
    )
    assert log == [("whop_payments", "whop_payments", PARTIAL, 7, 5, 0, 1, 0, 1, 0, 4, True)]
    assert report.records_in == (
        report.inserted + report.updated + report.unchanged + report.duplicates + report.rejected
    )


def test_duplicates_within_a_chunk_last_one_wins(warehouse_url):
    first = whop_payment("pay_1", "a@x.io", status="open")
    last = whop_payment("pay_1", "a@x.io", status="paid")
    report = sync_session(warehouse_url, PAYMENTS, [first, last])
    assert (report.inserted, report.duplicates) == (1, 1)
    assert query(warehouse_url, "select status from whop_payments") == [("paid",)]


def test_a_key_twice_in_a_chunk_is_judged_by_its_last_record_against_the_stored_row(
    warehouse_url,
):
    """The chunk is probed in parts: the last record's own part decides, not the first's."""
    sync_session(warehouse_url, PAYMENTS, [whop_payment("pay_1", "a@x.io", status="paid")])
    paid, refunded = (whop_payment("pay_1", "a@x.io", status=s) for s in ("paid", "refunded"))

    changed_last = sync_session(warehouse_url, PAYMENTS, [paid, refunded])
    assert (changed_last.updated, changed_last.duplicates) == (1, 1)
    assert query(warehouse_url, "select status from whop_payments") == [("refunded",)]

    back_to_stored_last = sync_session(warehouse_url, PAYMENTS, [paid, refunded, paid])
    assert (back_to_stored_last.updated, back_to_stored_last.duplicates) == (1, 2)
    assert query(warehouse_url, "select status from whop_payments") == [("paid",)]


def test_a_chunk_ends_at_its_byte_bound_and_a_record_larger_than_it_still_loads(warehouse_url):
    """chunk_bytes below one record's JSON: every record is a chunk of its own, so a key
    twice is no longer a duplicate within a chunk but a row written and then rewritten."""
    records = [whop_payment("pay_1", "a@x.io", status=s) for s in ("open", "paid")]
    records.append(whop_payment("pay_2", "b@x.io"))
    report = sync_session(warehouse_url, PAYMENTS, records, options=LoadOptions(chunk_bytes=1))
    assert (report.records_in, report.inserted, report.updated, report.duplicates) == (3, 2, 1, 0)
    assert query(warehouse_url, "select status from whop_payments order by external_id") == [
        ("paid",),
        ("paid",),
    ]


def test_a_re_sync_probes_parts_bounded_by_bytes(warehouse_url):
    """Parts of a quarter of chunk_bytes: each part's probe judges its own records."""
    records = payments(8)
    sync_session(warehouse_url, PAYMENTS, records, full=True)
    size = len(canonical_json(records[0]))
    changed = [*records[:5], *(dict(r, status="refunded") for r in records[5:])]
    options = LoadOptions(chunk_bytes=4 * size)  # parts of about one record, chunks of four
    report = sync_session(warehouse_url, PAYMENTS, changed, full=True, options=options)
    assert (report.records_in, report.unchanged, report.updated) == (8, 5, 3)
    assert report.timings["probe_s"] > 0
    refunded = query(warehouse_url, "select count(*) from whop_payments where status = 'refunded'")
    assert refunded == [(3,)]


def test_load_options_refuse_empty_chunks():
    with pytest.raises(ValueError, match="chunk_bytes must be positive"):
        LoadOptions(chunk_bytes=0)
    with pytest.raises(ValueError, match="chunk_size must be positive"):
        LoadOptions(chunk_size=0)


def test_a_first_sync_skips_the_probe_and_a_re_sync_probes(warehouse_url):
    """Nothing live yet: every record is new, so no probe query runs."""
    records = [whop_payment(f"pay_{i}", f"p{i}@x.io") for i in range(5)]
    first = sync_session(warehouse_url, PAYMENTS, records, full=True, options=SMALL_CHUNKS)
    assert (first.inserted, first.timings["probe_s"]) == (5, 0.0)

    again = sync_session(warehouse_url, PAYMENTS, records[:4], full=True, options=SMALL_CHUNKS,
                         max_delete_share=0.5)  # fmt: skip
    assert (again.unchanged, again.soft_deleted) == (4, 1)
    assert again.timings["probe_s"] > 0


def test_full_sync_of_one_sheet_leaves_other_sheets_alone(warehouse_url):
    sheet_a, sheet_b = (
        registered(spec_sheet_rows("A", "Sheet1")),
        registered(spec_sheet_rows("B", "Sheet1")),
    )
    same_row = sheet_row("s@x.io", "Sam")
    sync_session(warehouse_url, sheet_a, [same_row, sheet_row("t@x.io")], full=True)
    sync_session(warehouse_url, sheet_b, [same_row], full=True)
    assert query(warehouse_url, "select count(*) from sheet_rows") == [(3,)]  # per-sheet identity

    report = sync_session(warehouse_url, sheet_a, [same_row], full=True, max_delete_share=0.5)
    assert report.soft_deleted == 1
    live = query(
        warehouse_url,
        "select spreadsheet_id, email from sheet_rows where deleted_at is null order by 1",
    )
    assert live == [("A", "s@x.io"), ("B", "s@x.io")]


def test_a_killed_session_is_marked_abandoned_by_the_next(warehouse_url):
    with psycopg.connect(warehouse_url) as dead:  # a session whose process is gone
        pid, started = dead.execute(
            "select pid, backend_start from pg_stat_activity where pid = pg_backend_pid()"
        ).fetchone()
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "insert into sync_log (source, target_table, full_sync, status, backend_pid,"
            " backend_start) values ('whop_payments', 'whop_payments', false, 'RUNNING', %s, %s)",
            (pid, started),
        )
    sync_session(warehouse_url, PAYMENTS, payments(1))
    log = query(warehouse_url, "select status, error_message from sync_log order by id")
    assert log[0][0] == FAILED and log[0][1].startswith("abandoned")
    assert log[1][0] == SUCCESS


def test_a_record_that_loads_resolves_the_rejects_of_its_key(warehouse_url):
    sync_session(warehouse_url, PAYMENTS, [whop_payment("pay_1", "broken")], run_id="r1")
    report = sync_session(warehouse_url, PAYMENTS, [whop_payment("pay_1", "ok@x.io")], run_id="r2")
    assert (report.inserted, report.resolved_rejects) == (1, 1)
    assert query(warehouse_url, "select record_key, resolved_by_run from sync_rejects") == [
        ("pay_1", "r2")
    ]


def test_replay_resolves_rejects_whose_rows_a_later_sync_already_stored(warehouse_url):
    row = {"Purchase Date (UTC)": "2025-01-02", "Order Total": "10", "Buyer E-mail": "bo@x.io"}
    sync_session(warehouse_url, registered(spec_elective_rows()), [row], full=True)
    fixed = registered(spec_elective_rows(ElectiveColumns(email=("Buyer E-mail",))))
    assert sync_session(warehouse_url, fixed, [row], full=True).inserted == 1

    replay = replay_rejects(warehouse_url, fixed, run_id="replay-2")
    assert (replay.records_in, replay.inserted, replay.unchanged) == (1, 0, 1)
    assert replay.resolved_rejects == 1
    assert query(warehouse_url, "select resolved_by_run from sync_rejects") == [("replay-2",)]


def test_an_unreachable_warehouse_names_the_variable_and_hides_the_password():
    from costudy_pipelines.lib.pg import DatabaseConfigError

    password = secrets.token_urlsafe(12)
    url = URL.create("postgresql", "loader", password, "127.0.0.1", 1, "warehouse")
    url = url.render_as_string(hide_password=False)
    with pytest.raises(DatabaseConfigError) as error:
        sync_session(connector(url, source="WAREHOUSE_DB_URL"), PAYMENTS, payments(1))
    assert "WAREHOUSE_DB_URL" in str(error.value) and password not in str(error.value)


DRIVER_TIME = datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
EVERY_SOURCE = [
    (registered(spec_whop_payments()), whop_payment("pay_1", "a@x.io", amount=money("5.00"))),
    (
        registered(spec_whop_memberships()),
        {"id": "mem_1", "user": "user_1", "email": "a@x.io", "product": "prod_1",
         "plan": "plan_1", "status": "active", "created_at": 1735787045,
         "renewal_period_end": 1738465445},
    ),
    (WHOP_USERS, {"id": "user_1", "email": "a@x.io", "name": "A", "username": "a"}),
    (CONTACTS, ghl_contact("c1", "a@x.io", first="A")),
    (registered(spec_sheet_rows("sheet", "Sheet1")), sheet_row("a@x.io", "A")),
    (registered(spec_elective_rows()), {"Email": "a@x.io", "Order Total": "$1,200.00",
                               "Purchase Date (UTC)": "2025-01-02"}),
    (registered(spec_website_people("demo_request")), {"id": 7, "email": "a@x.io",
                                              "created_at": DRIVER_TIME}),
    (VOTES, {"id": 7, "email": "a@x.io", "voted_at": DRIVER_TIME}),
    (
        registered(spec_platform_users()),
        {"id": uuid.UUID(int=1), "email": "a@x.io", "username": "a", "created_at": DRIVER_TIME,
         "updated_at": DRIVER_TIME},
    ),
    (
        registered(spec_course_orders()),
        {"id": 3, "user_email": "a@x.io", "total": Decimal("19.90"), "currency": "USD",
         "status": "paid", "created_at": DRIVER_TIME},
    ),
    (
        registered(spec_course_enrollments()),
        {"id": 4, "email": "a@x.io", "course_id": 9, "enrolled_at": DRIVER_TIME},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "record"), EVERY_SOURCE, ids=lambda v: getattr(v, "name", ""))
def test_every_source_loads_into_its_table(warehouse_url, spec, record):
    report = sync_session(warehouse_url, spec, [record], full=True)
    assert (report.inserted, report.rejected, report.status) == (1, 0, SUCCESS), report
    assert sync_session(warehouse_url, spec, [record], full=True).written == 0
    columns = ", ".join(f"t.{column.name}" for column in spec.columns)
    rows = query(warehouse_url, f"select u.email, {columns} from {spec.table} t join users u"
                                f" on u.id = t.user_id")  # fmt: skip
    assert rows[0][0] == "a@x.io" and any(value is not None for value in rows[0][1:])


def rejects(url: str) -> list[tuple]:
    return query(url, "select raw->>'Email', reason from sync_rejects order by 1")


def test_a_currency_symbol_sets_the_currency_or_contradicts_it(warehouse_url):
    """€4.20 in a sheet is euros, never 4.20 of the default dollars; £ under USD is refused."""
    sheet = registered(spec_sheet_rows("s", "w"))
    rows = [
        sheet_row("eu@example.com", amount="€4.20"),
        sheet_row("jp@example.com", amount="¥500") | {"Currency": "jpy"},
        sheet_row("us@example.com", amount=7),
        sheet_row("gb@example.com", amount="£3.00") | {"Currency": "USD"},
    ]
    report = sync_session(warehouse_url, sheet, rows, full=True)

    assert (report.inserted, report.rejected) == (3, 1)
    assert query(
        warehouse_url,
        "select u.email, s.amount, s.currency from sheet_rows s join users u on u.id = s.user_id"
        " order by 1",
    ) == [
        ("eu@example.com", Decimal("4.20"), "EUR"),
        ("jp@example.com", Decimal("500"), "JPY"),
        ("us@example.com", Decimal("7"), None),  # no symbol, no cell: the views' dollars
    ]
    assert rejects(warehouse_url) == [
        ("gb@example.com", "amount: '£3.00' is written in £ (GBP), but the row's currency says USD")
    ]

    elective = registered(spec_elective_rows())
    order = {
        "Email": "x@example.com",
        "Order Total": "€10",
        "Net Amount": "£9",
        "Status": "Approved",
    }
    assert sync_session(warehouse_url, elective, [order]).rejected == 1
    assert "net_amount: '£9' is written in £ (GBP), but the € of amount says EUR" in str(
        rejects(warehouse_url)
    )


@pytest.mark.parametrize(
    ("total", "reason"),
    [
        ("1e309", "total: '1e309' is beyond the bound of 1,000,000,000,000 an amount may reach"),
        (1e300, "total: 1e+300 is beyond the bound"),
        ("0.000000001", "total: '0.000000001' has 9 decimal places, more than the 8"),
        ({"currency": "usd"}, "total: a Money object without an amount (its keys: currency)"),
        ({"amount": None}, "total.amount: a Money object whose amount is null"),
        ({"amount": {"value": 1}}, "total.amount: not an amount (got a dict: {'value': 1})"),
        ({"amount": "12,5"}, "total.amount: not a decimal amount (got '12,5')"),
        ([49], "total: not an amount (got a list: [49])"),
        (True, "total: not an amount (got a bool: True)"),
        ("NaN", "total: not a finite amount (got 'NaN')"),
    ],
)
def test_absurd_amounts_and_malformed_money_are_rejected_with_reasons(warehouse_url, total, reason):
    records = [whop_payment("pay_ok", "ok@example.com"), whop_payment("pay_bad", "x@example.com")]
    records[1]["total"] = total

    report = sync_session(warehouse_url, PAYMENTS, records)

    assert (report.inserted, report.rejected) == (1, 1)
    [(stored_reason,)] = query(warehouse_url, "select reason from sync_rejects")
    assert stored_reason.startswith(reason)


def test_amount_bounds_are_configurable(warehouse_url):
    bounds = AmountBounds(max_magnitude=Decimal(1000), max_decimals=2)
    spec = dataclasses.replace(PAYMENTS, validator=WhopPaymentValidator(amount_bounds=bounds))
    records = [
        whop_payment("pay_1", "a@example.com", amount=999.99),
        whop_payment("pay_2", "b@example.com", amount=1000.01),
        whop_payment("pay_3", "c@example.com", amount=1.005),
    ]
    report = sync_session(warehouse_url, spec, records)
    assert (report.inserted, report.rejected) == (1, 2)


def test_a_soft_deleted_or_changed_winner_gives_way_to_the_live_records_by_priority(
    warehouse_url,
):
    """SPEC §3.2 over time: the field follows the live records, and so does its provenance."""
    email, other = "kim@example.com", "other@example.com"
    sheet, ghl = registered(spec_sheet_rows("s1", "w")), CONTACTS
    sync_session(
        warehouse_url, sheet, [sheet_row(email, "Kim (sheet)")], full=True, options=PRIORITY
    )
    sync_session(
        warehouse_url, PAYMENTS, [whop_payment("pay_1", email, name="Kim W")], options=PRIORITY
    )
    contacts = [ghl_contact("c1", email, first="Kim"), ghl_contact("c2", other, first="O")]
    sync_session(warehouse_url, ghl, contacts, full=True, options=PRIORITY)
    assert user_name(warehouse_url, email) == ("Kim", "ghl", "ghl_contacts:c1", True)

    # the GoHighLevel contact that gave the name is soft-deleted: Whop's name, Whop's record
    gone = sync_session(
        warehouse_url, ghl, contacts[1:], full=True, force_delete=True, options=PRIORITY
    )
    assert gone.soft_deleted == 1
    assert user_name(warehouse_url, email)[:3] == ("Kim W", "whop", "whop_payments:pay_1")

    # so a Whop rename (a newer payment) is no longer ignored
    newer = whop_payment("pay_2", email, name="Kimberly W", created_at="2025-02-01T00:00:00Z")
    sync_session(warehouse_url, PAYMENTS, [newer], options=PRIORITY)
    assert user_name(warehouse_url, email)[:3] == ("Kimberly W", "whop", "whop_payments:pay_2")

    # the winning record changes and offers no name any more: the next live one by priority
    sync_session(
        warehouse_url,
        PAYMENTS,
        [newer | {"user": newer["user"] | {"name": None}}],
        options=PRIORITY,
    )
    assert user_name(warehouse_url, email)[:3] == ("Kim W", "whop", "whop_payments:pay_1")

    # Whop's last name moves to another person: the sheet's is all that is left
    moved = whop_payment("pay_1", other, name="Kim W")
    sync_session(warehouse_url, PAYMENTS, [moved], options=PRIORITY)
    name, family, record, _ = user_name(warehouse_url, email)
    assert (name, family, record.startswith("sheet_rows:")) == ("Kim (sheet)", "sheets", True)

    # no live record offers a name: none, and no provenance pointing at a deleted row
    sync_session(
        warehouse_url,
        sheet,
        [sheet_row(other, "O")],
        full=True,
        force_delete=True,
        options=PRIORITY,
    )
    assert user_name(warehouse_url, email)[:3] == (None, None, None)
    assert user_name(warehouse_url, other)[:3] == ("O", "ghl", "ghl_contacts:c2")
