"""Drift: views re-created by their own assets are not schema drift; hand-made ones are."""

from __future__ import annotations

import psycopg

from costudy_pipelines.lib.migrations.catalog import snapshot
from costudy_pipelines.lib.views import REPEATABLE_MARK


def test_repeatable_views_are_left_out_of_drift_but_hand_made_views_are_not(
    fresh_db_url: str,
) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute("create table t (a int)")
        conn.execute("create view managed as select a from t")
        conn.execute(f"comment on view managed is '{REPEATABLE_MARK} managed.sql'")
        conn.execute("create view by_hand as select a from t")
        names = {name for _kind, name in snapshot(conn)}
    assert "public.by_hand" in names and "public.by_hand.a" in names
    assert not any(name.startswith("public.managed") for name in names)
