"""Other tools' folder layouts and `${name}` placeholders, promoted dev → prod on real databases."""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from costudy_pipelines.lib.migrations import (
    ConfigError,
    DiscoveryError,
    PlanRefused,
    RunOptions,
    apply,
    discover,
    load_config,
    promote,
    rollback,
)
from costudy_pipelines.lib.migrations.discovery import Layout, checksum
from costudy_pipelines_tests.lib.migrations.support import query, target, write_files

CREATE = """
    create schema ${schema};
    create table ${schema}.notes (id bigint primary key, owner text default '${owner}');
"""
ADD_COLUMN = "alter table ${schema}.notes add column body text;\n"
DROP = "drop schema ${schema} cascade;\n"

LAYOUTS = {
    Layout.COSTUDY: {
        "001-create.schema.sql": CREATE,
        "001-create.schema.down.sql": DROP,
        "003-add-body.sql": ADD_COLUMN,  # a gap
    },
    Layout.GOLANG_MIGRATE: {
        "0001_create.schema.up.sql": CREATE,
        "0001_create.schema.down.sql": DROP,
        "0003_add_body.up.sql": ADD_COLUMN,
        "0003_add_body.down.sql": "alter table ${schema}.notes drop column body;",
    },
    Layout.FLYWAY: {
        "V1__create.schema.sql": CREATE,
        "U1__create.schema.sql": DROP,
        "V3__add_body.sql": ADD_COLUMN,
    },
    Layout.DBMATE: {
        "20240101120000_create.schema.sql": "-- migrate:up\n"
        + textwrap.dedent(CREATE)
        + "\n-- migrate:down\n"
        + DROP,
        "20240315093000_add_body.sql": ADD_COLUMN,  # Rails-style: the whole file is the up part
    },
}


def _config(tmp_path: Path, folder: Path, layout: Layout | None) -> Path:
    path = tmp_path / "environments.toml"
    layout_line = f'layout = "{layout}"' if layout else ""
    path.write_text(
        textwrap.dedent(
            f"""
            [databases.app]
            folder = "{folder.name}"
            {layout_line}
            placeholders = {{ schema = "notes_app", owner = "dev_owner" }}
            [[databases.app.environments]]
            name = "dev"
            url_env = "APP_DEV_URL"

            [[databases.app.environments]]
            name = "prod"
            url_env = "APP_PROD_URL"
            placeholders = {{ owner = {{ env = "APP_PROD_OWNER" }} }}
            """
        )
    )
    return path


@pytest.mark.parametrize(
    ("layout", "configured"),
    [(layout, False) for layout in LAYOUTS] + [(Layout.DBMATE, True)],
    ids=[*LAYOUTS, "dbmate-configured"],
)
def test_layout_promotes_dev_then_prod_with_placeholders(
    databases, tmp_path: Path, monkeypatch, layout: Layout, configured: bool
):
    folder = write_files(tmp_path / "app", LAYOUTS[layout])
    dev, prod = databases.create(), databases.create()
    monkeypatch.setenv("APP_DEV_URL", dev)
    monkeypatch.setenv("APP_PROD_URL", prod)
    monkeypatch.setenv("APP_PROD_OWNER", "prod_owner")
    config = load_config(_config(tmp_path, folder, layout if configured else None))
    [database] = config.databases

    first = list(promote(config, database))
    again = list(promote(config, database))

    migrations = database.discover()
    assert migrations.layout is layout
    assert [len(report.applied) for report in first] == [2, 2]
    assert [report.applied for report in again] == [(), ()]
    for url, owner in ((dev, "dev_owner"), (prod, "prod_owner")):
        assert query(
            url,
            "select column_name, column_default from information_schema.columns"
            " where table_schema = 'notes_app' and table_name = 'notes' order by ordinal_position",
        ) == [("id", None), ("owner", f"'{owner}'::text"), ("body", None)]
    # Checksums are over the text before substitution: the same in both environments.
    recorded = "select name, checksum from schema_migrations order by version"
    assert query(dev, recorded) == query(prod, recorded)
    first_file = migrations.migrations[0]
    assert query(dev, recorded)[0] == (first_file.name, first_file.checksum)
    assert "${schema}" not in first_file.render({"schema": "x", "owner": "y"}).sql
    assert first_file.checksum == checksum(first_file.sql)  # the unrendered up text


def test_dbmate_down_part_keeps_its_line_numbers_and_no_transaction_option(folder: Path):
    write_files(
        folder,
        {
            "20240101120000_index.sql": """
                -- migrate:up transaction:false
                create index concurrently notes_idx on notes (id);

                -- migrate:down
                drop index notes_idx;
            """
        },
    )
    [migration] = discover(folder)

    assert migration.sql.startswith("-- costudy:no-transaction\ncreate index concurrently")
    assert "drop index" not in migration.sql
    assert migration.down_sql == "\n\n\n-- migrate:down\ndrop index notes_idx;\n"
    assert migration.down_name == "20240101120000_index.sql (migrate:down)"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"R__views.sql": ""}, "R__views.sql: Flyway repeatable migrations"),
        ({"V1.1__a.sql": ""}, "V1.1__a.sql: dotted Flyway versions"),
        ({"V1__a.sql": "", "V01__b.sql": ""}, "version 1 is used by several files"),
        (
            {"0001_a.up.sql": "", "0002_b.up.sql": "", "0003_c.sql": ""},
            "0003_c.sql does not match NNNN_name.up.sql and NNNN_name.down.sql",
        ),
    ],
)
def test_layout_problems_name_the_file(folder: Path, files: dict[str, str], message: str):
    write_files(folder, files)

    with pytest.raises(DiscoveryError, match=message):
        discover(folder)


def test_out_of_order_file_is_refused_unless_allowed(fresh_db_url: str, folder: Path):
    write_files(folder, {"001-a.sql": "create table a ();", "003-c.sql": "create table c ();"})
    apply(target(fresh_db_url), discover(folder))
    write_files(folder, {"002-b.sql": "create table b ();"})

    with pytest.raises(
        PlanRefused, match=r"002-b\.sql is pending but version 3 is already applied"
    ):
        apply(target(fresh_db_url), discover(folder))
    report = apply(target(fresh_db_url), discover(folder, out_of_order=True))

    assert [applied.name for applied in report.applied] == ["002-b.sql"]


def test_unknown_placeholder_is_refused_naming_file_and_line(fresh_db_url: str, folder: Path):
    write_files(folder, {"001-a.sql": "select 1;\ncreate schema ${schema};\n"})

    with pytest.raises(
        PlanRefused, match=r"001-a.sql: no value for placeholder \$\{schema\} at line 2"
    ):
        apply(target(fresh_db_url), discover(folder), RunOptions())
    assert query(fresh_db_url, "select to_regclass('schema_migrations') is null") == [(True,)]


def test_rollback_runs_the_rendered_down_files(fresh_db_url: str, folder: Path):
    write_files(folder, LAYOUTS[Layout.GOLANG_MIGRATE])
    values = {"schema": "notes_app", "owner": "someone"}
    filled = replace(target(fresh_db_url), placeholders=values)
    apply(filled, discover(folder))

    report = rollback(filled, discover(folder), 1)

    assert [done.name for done in report.rolled_back] == [
        "0003_add_body.down.sql",
        "0001_create.schema.down.sql",
    ]
    assert query(fresh_db_url, "select to_regnamespace('notes_app') is null") == [(True,)]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('layout = "rails"', "unknown layout 'rails' (known: costudy, golang-migrate"),
        ("placeholders = { schema = [1] }", "placeholder schema must be a text or"),
        ('tracking_table = "a.b.c"', "tracking_table must be `name` or `schema.name`, not 'a.b.c'"),
        (
            "session_lock_timeout_seconds = -1",
            "session_lock_timeout_seconds must be a number of seconds (0: no limit)",
        ),
        ('lint_after = "x"', "lint_after must be a version number"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, toml: str, message: str):
    path = tmp_path / "environments.toml"
    path.write_text(
        f'[databases.app]\n{toml}\nenvironments = [{{ name = "dev", url_env = "X_URL" }}]\n'
    )

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)
