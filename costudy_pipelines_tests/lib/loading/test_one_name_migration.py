"""Migration 010 (issue 25): what was stored under a feed's or a source's old name reads on
under its one name; its down migration gives the old names back."""

from __future__ import annotations

import shutil
from pathlib import Path

from psycopg.types.json import Jsonb

from costudy_pipelines.lib.migrations import Target, apply_pending, discover, rollback
from costudy_pipelines.lib.pg import connect
from costudy_pipelines.lib.settings import PROJECT_ROOT

WAREHOUSE_SQL = PROJECT_ROOT / "sql" / "warehouse"
RENAME = "010-one-name-per-feed"


def folder_before_010(tmp_path: Path) -> Path:
    folder = tmp_path / "warehouse"
    folder.mkdir()
    for path in WAREHOUSE_SQL.glob("00*.sql"):
        shutil.copy(path, folder)
    return folder


def test_old_names_are_renamed_and_the_down_migration_restores_them(
    fresh_db_url: str, tmp_path: Path
) -> None:
    folder = folder_before_010(tmp_path)
    apply_pending(fresh_db_url, folder)
    with connect(fresh_db_url, source="WAREHOUSE_DB_URL") as db:
        db.execute(
            "insert into sync_log (source, target_table, scope, full_sync, status, completed_at)"
            " values ('website_vote', 'website_people', %s, false, 'SUCCESS', now())",
            (Jsonb({"event_kind": "vote"}),),
        )
        db.execute(
            "insert into sync_rejects (source, scope, fingerprint, raw, reason)"
            " values ('website_demo_request', '{}', 'x', '{}', 'no email')"
        )
        db.execute(
            "insert into users (email, email_source, email_source_record, name, name_source,"
            " name_source_record) values"
            " ('a@x.io', 'sheet', 'sheet_rows:01', 'A', 'sheet', 'sheet_rows:01'),"
            " ('b@x.io', 'course', 'course_activity:9', 'B', 'course', 'course_orders:3')"
        )
        db.execute(
            "insert into user_field_sources values ('sheet_rows', 'sheet', 'row_hash'),"
            " ('course_activity', 'course', 'external_id'), ('course_orders', 'course',"
            " 'external_id')"
        )
    for suffix in (".sql", ".down.sql"):
        shutil.copy(WAREHOUSE_SQL / f"{RENAME}{suffix}", folder)
    apply_pending(fresh_db_url, folder)

    with connect(fresh_db_url, source="WAREHOUSE_DB_URL", autocommit=True) as db:
        assert db.execute("select source from sync_log").fetchall() == [("website_votes",)]
        assert db.execute("select source from sync_rejects").fetchall() == [
            ("website_demo_requests",)
        ]
        assert db.execute(
            "select email, email_source, name_source from users order by email"
        ).fetchall() == [("a@x.io", "sheets", "sheets"), ("b@x.io", "course_activity", "course")]
        assert dict(db.execute("select source_table, family from user_field_sources")) == {
            "sheet_rows": "sheets",
            "course_activity": "course_activity",
            "course_orders": "course",
        }

    rollback(Target(folder.name, "test", fresh_db_url, "WAREHOUSE_DB_URL"), discover(folder), 10)
    with connect(fresh_db_url, source="WAREHOUSE_DB_URL", autocommit=True) as db:
        assert db.execute("select source from sync_log").fetchall() == [("website_vote",)]
        assert db.execute(
            "select email, email_source, name_source from users order by email"
        ).fetchall() == [("a@x.io", "sheet", "sheet"), ("b@x.io", "course", "course")]
