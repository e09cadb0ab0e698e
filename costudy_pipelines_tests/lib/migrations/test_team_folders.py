"""A team's folder as it is, taken by configuration alone: folder-per-migration layouts, other
placeholder syntaxes, other tools' no-transaction markers, `--target`, destructive approvals per
environment, and a tracking-table guard that reads schemas. Real PostgreSQL throughout."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from costudy_pipelines.lib.migrations import (
    DiscoveryError,
    PlanRefused,
    RunOptions,
    apply,
    discover,
    load_config,
    promote,
    rollback,
)
from costudy_pipelines.lib.migrations.discovery import Layout, PlaceholderSyntax
from costudy_pipelines.lib.migrations.maintenance import adopt
from costudy_pipelines.lib.migrations.promotion import lint
from costudy_pipelines.lib.migrations.target import Target
from costudy_pipelines.lib.migrations.tracking import TrackingTable
from costudy_pipelines_tests.lib.migrations.support import (
    applied_versions,
    query,
    table_exists,
    write_files,
)


def _target(url: str, **fields: object) -> Target:
    return Target("app", "dev", url, "TEST_DB_URL", **fields)  # type: ignore[arg-type]


# -- folder-per-migration layouts ------------------------------------------------------------


def test_diesel_folders_order_by_name_with_and_without_sequence_and_roll_back(
    fresh_db_url: str, folder: Path
):
    write_files(
        folder,
        {
            "00000000000000_diesel_initial_setup/up.sql": "create table setup (id int);",
            "00000000000000_diesel_initial_setup/down.sql": "drop table setup;",
            "2019-02-26-002946_create_user/up.sql": "create table person (id int);",
            "2019-02-26-002946_create_user/down.sql": "drop table person;",
            "2025-10-08-084508-0000_index-lower/up.sql": "create index on person (id);",
            "2025-10-08-084508-0000_index-lower/down.sql": "drop index person_id_idx;",
            "20251009101527_plain_stamp/up.sql": "alter table person add column name text;",
            "20251009101527_plain_stamp/down.sql": "alter table person drop column name;",
        },
    )
    migrations = discover(folder)
    assert migrations.layout is Layout.DIESEL
    assert [m.name for m in migrations] == [
        "00000000000000_diesel_initial_setup/up.sql",
        "2019-02-26-002946_create_user/up.sql",
        "2025-10-08-084508-0000_index-lower/up.sql",
        "20251009101527_plain_stamp/up.sql",
    ]
    assert migrations.version_of("2025-10-08-084508-0000_index-lower") == 202510080845080000
    assert migrations.version_of("2019-02-26-002946") == 201902260029460000

    apply(_target(fresh_db_url), migrations)
    assert table_exists(fresh_db_url, "person") and table_exists(fresh_db_url, "setup")
    rollback(_target(fresh_db_url), migrations, 202510080845080000)
    assert query(fresh_db_url, "select count(*) from pg_indexes where tablename = 'person'") == [
        (0,)
    ]
    assert applied_versions(fresh_db_url) == [0, 201902260029460000]


def test_prisma_folders_ignore_the_lock_file_and_refuse_a_folder_without_its_file(folder: Path):
    write_files(
        folder,
        {
            "01_init/migration.sql": "create table website (id int);",
            "02_add_name/migration.sql": "alter table website add column name text;",
            "migration_lock.toml": 'provider = "postgresql"\n',
        },
    )
    migrations = discover(folder)
    assert migrations.layout is Layout.PRISMA
    assert [(m.version, m.name) for m in migrations] == [
        (1, "01_init/migration.sql"),
        (2, "02_add_name/migration.sql"),
    ]
    (folder / "03_empty").mkdir()
    with pytest.raises(DiscoveryError, match=r"03_empty/ has no migration\.sql"):
        discover(folder, layout=Layout.PRISMA)


@pytest.mark.parametrize(
    "files",
    [
        {
            "00001_notes.sql": """
                -- +goose Up
                create table notes (id int, body text);
                -- +goose Down
                drop table notes;
            """,
            "00002_notes_index.sql": """
                -- +goose NO TRANSACTION
                -- +goose Up
                create index concurrently notes_body_idx on notes (body);
                -- +goose Down
                drop index concurrently notes_body_idx;
            """,
        },
        {
            "2024-01-01-000000_notes/up.sql": "create table notes (id int, body text);",
            "2024-01-01-000000_notes/down.sql": "drop table notes;",
            "2024-01-02-000000_notes_index/up.sql": (
                "create index concurrently notes_body_idx on notes (body);"
            ),
            "2024-01-02-000000_notes_index/metadata.toml": "run_in_transaction = false\n",
        },
        {
            "V1__notes.sql": "create table notes (id int, body text);",
            "V2__notes_index.sql": "create index concurrently notes_body_idx on notes (body);",
            "V2__notes_index.sql.conf": "# script configuration\nexecuteInTransaction=false\n",
        },
    ],
    ids=["goose", "diesel-metadata", "flyway-conf"],
)
def test_the_tools_own_no_transaction_settings_are_honoured(
    fresh_db_url: str, folder: Path, files: dict[str, str]
):
    write_files(folder, files)
    migrations = discover(folder)

    report = apply(_target(fresh_db_url), migrations)

    assert [applied.mode for applied in report.applied] == ["transaction", "no-transaction"]
    assert query(fresh_db_url, "select indexname from pg_indexes where tablename = 'notes'") == [
        ("notes_body_idx",)
    ]
    if "00001_notes.sql" in files:
        # goose's Down part is never part of the up: the table is still there.
        first = migrations.migrations[0]
        assert first.down_name == "00001_notes.sql (+goose Down)"
        assert "drop table" not in first.sql and table_exists(fresh_db_url, "notes")


# -- placeholders ---------------------------------------------------------------------------

GO_TEMPLATE = {
    "0001_jobs.up.sql": """
        create schema if not exists {{ index .Options "Namespace" }};
        create table {{ index .Options "Namespace" }}.jobs (id bigint primary key);
    """,
    "0001_jobs.down.sql": 'drop table {{ index .Options "Namespace" }}.jobs;\n',
    "0002_job_state.up.sql": """
        alter table {{ index .Options "Namespace" }}.jobs add column state text;
        comment on column {{index .Options "Namespace"}}.jobs.state is '${not_a_placeholder}';
    """,
    "0002_job_state.down.sql": """
        alter table {{ index .Options "Namespace" }}.jobs drop column state;
    """,
}


def _environments_file(tmp_path: Path, database: str, environments: str) -> Path:
    path = tmp_path / "environments.toml"
    path.write_text(
        textwrap.dedent(database).lstrip() + "\n" + textwrap.dedent(environments).lstrip()
    )
    return path


def test_go_template_placeholders_fill_per_environment_and_are_checked_offline(
    databases, tmp_path: Path, monkeypatch, folder: Path
):
    write_files(folder, GO_TEMPLATE)
    dev, prod = databases.create(), databases.create()
    monkeypatch.setenv("APP_DEV_URL", dev)
    monkeypatch.setenv("APP_PROD_URL", prod)
    database = """
        [databases.app]
        placeholder_syntax = "go-template"
        placeholders = { Namespace = "river_dev" }
    """
    complete = """
        [[databases.app.environments]]
        name = "dev"
        url_env = "APP_DEV_URL"
        [[databases.app.environments]]
        name = "prod"
        url_env = "APP_PROD_URL"
        placeholders = { Namespace = "river" }
        allow_destructive = [{ file = "0002_job_state.up.sql", reason = "not destructive" }]
    """
    config = load_config(_environments_file(tmp_path, database, complete))
    [app] = config.databases
    # The approval names a file that destroys nothing: harmless, and the file exists.
    assert lint(app).problems == ()

    reports = list(promote(config, app, (), RunOptions(skip_backup=True)))

    assert [len(report.applied) for report in reports] == [2, 2]
    assert query(dev, "select to_regclass('river_dev.jobs') is not null") == [(True,)]
    assert query(prod, "select to_regclass('river.jobs') is not null") == [(True,)]
    # `${...}` means nothing in a go-template folder: it stays as written.
    assert query(prod, "select col_description('river.jobs'::regclass, 2)") == [
        ("${not_a_placeholder}",)
    ]

    missing = database.replace('placeholders = { Namespace = "river_dev" }', "")
    config = load_config(_environments_file(tmp_path, missing, complete))
    problems = lint(config.databases[0]).problems
    assert problems == (
        '0001_jobs.up.sql: no value for placeholder {{ index .Options "Namespace" }} at line 1, '
        '{{ index .Options "Namespace" }} at line 2 in app/dev (configured: none)',
        '0001_jobs.down.sql: no value for placeholder {{ index .Options "Namespace" }} at line 1 '
        "in app/dev (configured: none)",
        '0002_job_state.up.sql: no value for placeholder {{ index .Options "Namespace" }} at '
        'line 1, {{ index .Options "Namespace" }} at line 2 in app/dev (configured: none)',
        '0002_job_state.down.sql: no value for placeholder {{ index .Options "Namespace" }} at '
        "line 1 in app/dev (configured: none)",
    )


def test_flyway_prefix_and_suffix_are_configurable(fresh_db_url: str, folder: Path):
    write_files(folder, {"V1__notes.sql": "create table %[schema]%.notes (id int);\n"})
    query(fresh_db_url, "create schema team")
    syntax = PlaceholderSyntax("%[", "]%")
    migrations = discover(folder, syntax=syntax)

    apply(_target(fresh_db_url, placeholders={"schema": "team"}), migrations)

    assert table_exists(fresh_db_url, "team.notes")
    with pytest.raises(PlanRefused, match=r"no value for placeholder %\[schema\]% at line 1"):
        apply(_target(fresh_db_url, tracking=TrackingTable("team", "versions")), migrations)


# -- other tools' no-transaction markers, --target --------------------------------------------

POSTGRES_MIGRATIONS = {
    "0001-create-notes.sql": "create table notes (id bigint primary key, body text);\n",
    "0002-notes-body-index.sql": """
        -- postgres-migrations disable-transaction
        create index concurrently notes_body_idx on notes (body);
    """,
    "0003-notes-title.sql": "alter table notes add column title text;\n",
}
MARKER = "-- postgres-migrations disable-transaction"


def test_another_tools_no_transaction_marker_is_recognised_when_configured(
    fresh_db_url: str, folder: Path
):
    write_files(folder, POSTGRES_MIGRATIONS)

    with pytest.raises(PlanRefused) as refused:
        apply(_target(fresh_db_url), discover(folder))
    assert refused.value.problems[0].startswith(
        "0002-notes-body-index.sql line 2: CREATE INDEX CONCURRENTLY cannot run inside a "
        "transaction block"
    )
    assert refused.value.hint == (
        "The first refused file is 0002-notes-body-index.sql: `apply --target 1` applies the "
        "1 pending file(s) before it."
    )
    assert not table_exists(fresh_db_url, "schema_migrations")

    # The good prefix, on purpose: the refused file after it does not stop it.
    report = apply(_target(fresh_db_url), discover(folder), RunOptions(target_version="1"))
    assert [applied.name for applied in report.applied] == ["0001-create-notes.sql"]

    # Configured, the marker works as the runner's own directive (spelled loosely too).
    migrations = discover(
        folder, no_transaction_markers=("--  Postgres-Migrations  disable-transaction",)
    )
    report = apply(
        _target(fresh_db_url), migrations, RunOptions(target_version="0002-notes-body-index")
    )
    assert [(a.name, a.mode) for a in report.applied] == [
        ("0002-notes-body-index.sql", "no-transaction")
    ]
    assert applied_versions(fresh_db_url) == [1, 2]
    report = apply(_target(fresh_db_url), migrations)
    assert [applied.name for applied in report.applied] == ["0003-notes-title.sql"]


def test_marker_in_a_string_is_not_a_marker(folder: Path):
    write_files(
        folder,
        {"0001-note.sql": f"insert into notes (body) values ('{MARKER}');\n"},
    )
    [migration] = discover(folder, no_transaction_markers=(MARKER,))
    assert migration.no_transaction is False


# -- destructive statements approved per environment ---------------------------------------


def test_production_applies_an_approved_destructive_file_and_records_why(
    fresh_db_url: str, folder: Path
):
    write_files(
        folder,
        {
            "001-notes.sql": "create table notes (id int, legacy text);\n",
            "002-drop-legacy.sql": "alter table notes drop column legacy;\n",
        },
    )
    migrations = discover(folder)
    production = _target(fresh_db_url, production=True)
    with pytest.raises(
        PlanRefused, match=r"002-drop-legacy\.sql line 1: ALTER TABLE … DROP COLUMN"
    ):
        apply(production, migrations, RunOptions(skip_backup=True))

    approved = _target(
        fresh_db_url,
        production=True,
        approvals={"002-drop-legacy.sql": "legacy emptied in March, ticket OPS-12"},
    )
    apply(approved, migrations, RunOptions(skip_backup=True))

    assert query(
        fresh_db_url,
        "select name, detail from schema_migrations_history where action = 'apply' order by id",
    ) == [
        ("001-notes.sql", "transaction mode, 1 statements"),
        (
            "002-drop-legacy.sql",
            "transaction mode, 1 statements; destructive statements approved by configuration: "
            "legacy emptied in March, ticket OPS-12",
        ),
    ]


def test_an_approval_naming_no_file_is_a_validation_problem(tmp_path: Path, folder: Path):
    write_files(folder, {"001-notes.sql": "drop table if exists old_notes;\n"})
    path = _environments_file(
        tmp_path,
        "[databases.app]",
        """
        [[databases.app.environments]]
        name = "prod"
        url_env = "APP_PROD_URL"
        production = true
        allow_destructive = [
            { file = "001-notes.sql", reason = "old_notes was never used" },
            { file = "002-gone.sql", reason = "typo" },
        ]
        """,
    )
    assert lint(load_config(path).databases[0]).problems == (
        f"app/prod: allow_destructive names 002-gone.sql, which is not a migration in {folder}",
    )


# -- the tracking-table guard reads schemas -------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("alter table if exists auth.schema_migrations owner to current_user;", False),
        ('alter table if exists "auth"."schema_migrations" owner to current_user;', False),
        ("alter table if exists public.schema_migrations owner to current_user;", True),
        ("alter table if exists schema_migrations owner to current_user;", True),
        (
            "set search_path to auth;\n"
            "alter table if exists schema_migrations owner to current_user;",
            False,
        ),
        ("delete from schema_migrations_history;", True),
    ],
)
def test_tracking_table_guard_compares_schemas(
    fresh_db_url: str, folder: Path, sql: str, refused: bool
):
    query(fresh_db_url, "create schema auth; create table auth.schema_migrations (v text)")
    write_files(folder, {"001-auth.sql": sql})
    if refused:
        with pytest.raises(PlanRefused, match="the runner's own tracking table"):
            apply(_target(fresh_db_url), discover(folder))
    else:
        apply(_target(fresh_db_url), discover(folder))
        assert applied_versions(fresh_db_url) == [1]


# -- taking over from the team's tool -----------------------------------------------------

DIESEL_FOLDER = {
    "00000000000000_diesel_initial_setup/up.sql": "create table setup (id int);",
    "2019-02-26-002946_person/up.sql": "create table person (id int);",
    "2025-10-08-084508-0000_post/up.sql": "create table post (id int);",
    "2025-10-09-101527-0000_comment/up.sql": "create table comment (id int);",
}
PRISMA_FOLDER = {
    "01_init/migration.sql": "create table website (id int);",
    "02_session/migration.sql": "create table session (id int);",
    "03_event/migration.sql": "create table event (id int);",
}


@pytest.mark.parametrize(
    ("tool", "files", "history"),
    [
        (
            "diesel",
            DIESEL_FOLDER,
            "create table __diesel_schema_migrations (version varchar(50) primary key,"
            " run_on timestamp not null default now());"
            " insert into __diesel_schema_migrations (version) values"
            " ('00000000000000'), ('20190226002946'), ('202510080845080000');"
            " create table setup (id int); create table person (id int);"
            " create table post (id int);",
        ),
        (
            "prisma",
            PRISMA_FOLDER,
            "create table _prisma_migrations (id text primary key, checksum text,"
            " finished_at timestamptz, migration_name text not null,"
            " rolled_back_at timestamptz, applied_steps_count int default 0);"
            " insert into _prisma_migrations values"
            " ('a', 'x', now(), '01_init', null), ('b', 'x', now(), '02_session', null),"
            " ('c', 'x', null, '03_event', now());"
            " create table website (id int); create table session (id int);",
        ),
        (
            "dbmate",
            {
                "20240101000000_a.sql": "-- migrate:up\ncreate table a (id int);\n",
                "20240102000000_b.sql": "-- migrate:up\ncreate table b (id int);\n",
            },
            "create table schema_migrations (version varchar(128) primary key);"
            " insert into schema_migrations values ('20240101000000');"
            " create table a (id int);",
        ),
    ],
    ids=["diesel", "prisma", "dbmate"],
)
def test_init_from_the_teams_tool_baselines_what_it_applied(
    fresh_db_url: str, folder: Path, tool: str, files: dict[str, str], history: str
):
    write_files(folder, files)
    query(fresh_db_url, history)
    migrations = discover(folder)
    own = _target(fresh_db_url, tracking=TrackingTable("costudy", "migrations"))
    query(fresh_db_url, "create schema costudy")

    adopted = adopt(own, migrations, tool)
    report = apply(own, migrations)

    assert adopted == [m.version for m in migrations.migrations[: len(adopted)]]
    assert len(adopted) + len(report.applied) == len(migrations)
    assert len(report.applied) == 1  # the one file the tool had not applied (or rolled back)
    assert query(fresh_db_url, "select count(*) from costudy.migrations") == [(len(migrations),)]


# -- Flyway's dotted versions ---------------------------------------------------------------


def test_flyway_dotted_versions_order_as_flyway_orders_them_and_adopt(
    fresh_db_url: str, folder: Path
):
    write_files(
        folder,
        {
            "V1__base.sql": "create table base (id int);",
            "V1.1__more.sql": "create table more (id int);",
            "V1_2_1__patch.sql": "create table patch (id int);",
            "V1.10__later.sql": "create table later (id int);",
            "V2__two.sql": "create table two (id int);",
        },
    )
    with pytest.raises(DiscoveryError, match=r"need `dotted_versions = true`"):
        discover(folder)
    migrations = discover(folder, dotted_versions=True)
    assert [m.name for m in migrations] == [
        "V1__base.sql",
        "V1.1__more.sql",
        "V1_2_1__patch.sql",
        "V1.10__later.sql",
        "V2__two.sql",
    ]
    assert migrations.version_of("1.2.1") == migrations.version_of("V1_2_1") == 1_0002_0001_0000

    # Flyway applied up to 1.2.1; the runner takes over and applies the rest.
    query(
        fresh_db_url,
        "create table flyway_schema_history (installed_rank int primary key, version text,"
        " script text, success boolean not null);"
        " insert into flyway_schema_history values (1, '1', 'V1__base.sql', true),"
        " (2, '1.1', 'V1.1__more.sql', true), (3, '1.2.1', 'V1_2_1__patch.sql', true);"
        " create table base (id int); create table more (id int); create table patch (id int)",
    )
    adopted = adopt(_target(fresh_db_url), migrations, "flyway")
    report = apply(_target(fresh_db_url), migrations, RunOptions(target_version="1.10"))

    assert adopted == [m.version for m in migrations.migrations[:3]]
    assert [applied.name for applied in report.applied] == ["V1.10__later.sql"]
