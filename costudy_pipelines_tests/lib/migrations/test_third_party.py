"""A realistic vendored folder (fixtures/third_party): refused precisely as is, applied once the
operator marks its two non-transactional files, and never half-applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from costudy_pipelines.lib.migrations import PlanRefused, apply_pending
from costudy_pipelines_tests.lib.migrations.support import FIXTURES, query, table_exists

THIRD_PARTY = FIXTURES / "third_party"
NEEDS_NO_TRANSACTION = ("018-status-index.sql", "022-backfill-priority.sql")


def test_folder_as_vendored_is_refused_before_anything_runs(fresh_db_url: str):
    with pytest.raises(PlanRefused) as raised:
        apply_pending(fresh_db_url, THIRD_PARTY)

    problems = raised.value.problems
    assert len(problems) == 2
    assert problems[0].startswith(
        "018-status-index.sql line 2: CREATE INDEX CONCURRENTLY cannot run inside a "
        "transaction block: start the file with `-- costudy:no-transaction`"
    )
    assert problems[1].startswith(
        "022-backfill-priority.sql line 2: COMMIT/ROLLBACK inside a DO block (line 11)"
    )
    assert query(fresh_db_url, "select count(*) from pg_namespace where nspname = 'helpdesk'") == [
        (0,)
    ]
    assert not table_exists(fresh_db_url, "schema_migrations")


def _copy_marked(destination: Path, names: list[str]) -> None:
    """What the operator does: copy the vendored files, marking the two that cannot be atomic."""
    destination.mkdir(exist_ok=True)
    for name in names:
        text = (THIRD_PARTY / name).read_text()
        marker = "-- costudy:no-transaction\n" if name in NEEDS_NO_TRANSACTION else ""
        (destination / name).write_text(marker + text)


def test_marked_folder_applies_in_two_deploys_with_real_data_between(
    fresh_db_url: str, tmp_path: Path
):
    names = sorted(path.name for path in THIRD_PARTY.glob("*.sql"))
    folder = tmp_path / "helpdesk"
    _copy_marked(folder, [name for name in names if name < "022"])
    first = apply_pending(fresh_db_url, folder)
    # Production data arrives between deploys: 2,500 tickets without a priority.
    query(
        fresh_db_url,
        """
        with org as (insert into helpdesk.organizations (name) values ('Org') returning id),
             cust as (insert into helpdesk.customers (organization_id, email)
                      select id, 'c@org.test' from org returning id, organization_id)
        insert into helpdesk.tickets (organization_id, customer_id, subject)
        select organization_id, id, 'Printer on fire #' || n
          from cust, generate_series(1, 2500) n
        """,
    )
    _copy_marked(folder, names)
    second = apply_pending(fresh_db_url, folder)
    again = apply_pending(fresh_db_url, folder)

    assert len(first.applied) == 21 and len(second.applied) == 10 and again.applied == ()
    assert {a.name: a.mode for a in first.applied + second.applied}[
        "017-audit-log.sql"
    ] == "wrapped"
    assert query(fresh_db_url, "select count(*) from helpdesk.tickets where priority is null") == [
        (0,)
    ]
    assert query(fresh_db_url, "select enum_range(null::helpdesk.ticket_status)::text") == [
        ("{new,open,escalated,pending,solved,closed}",)
    ]
    assert query(
        fresh_db_url,
        "select indisvalid from pg_index"
        " where indexrelid = 'helpdesk.tickets_status_idx'::regclass",
    ) == [(True,)]
    assert query(
        fresh_db_url,
        "select count(*) from pg_inherits where inhparent = 'helpdesk.ticket_events'::regclass",
    ) == [(12,)]
    assert query(
        fresh_db_url,
        "select helpdesk.escalate(1)::text, helpdesk.is_business_hour('2024-05-06 10:00+00')",
    ) == [("escalated", True)]
    assert query(fresh_db_url, "select action from helpdesk.audit_log") == [
        ("audit log created; hello",)
    ]
    assert query(
        fresh_db_url, "select count(*) from helpdesk.search_tickets('PRINTER on fire #25')"
    ) == [(12,)]  # #25, #250-#259, #2500
    assert query(fresh_db_url, "select name from helpdesk.organizations order by id") == [
        ("Org",),
        ("Acme; Inc.",),
        ("Costs $$5 Ltd",),
    ]
