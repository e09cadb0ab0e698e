"""How the runner reads a file before running it: statement boundaries, modes, refusals, lint."""

from __future__ import annotations

import pytest

from costudy_pipelines.lib.migrations import Mode, analyse
from costudy_pipelines.lib.migrations.sqltext import SqlLexError, split_statements

TRICKY = """-- header; with a semicolon
create table t (id int, "odd;name" text default 'x;y', e text default E'it\\'s; ok');
create function f() returns int language plpgsql as $body$
begin
    return 1;  -- ;
end;
$body$;
create function g(a int) returns int language sql
begin atomic
    select a + 1;
    select case when a > 0 then 1 else 2 end;
end;
/* nested /* comment ; */ still a comment ; */
select $1::int, 'costs $$5';;
"""


def test_statements_end_only_at_top_level_semicolons():
    statements = split_statements(TRICKY)

    assert [s.words[:2] for s in statements] == [
        ("CREATE", "TABLE"),
        ("CREATE", "FUNCTION"),
        ("CREATE", "FUNCTION"),
        ("SELECT", "INT"),
    ]
    assert [s.line for s in statements] == [2, 3, 8, 14]
    assert statements[1].text.endswith("$body$")
    assert statements[2].text.endswith("end")


@pytest.mark.parametrize(
    "text",
    ["select 'open", 'select "open', "select $q$ open", "/* open /* nested */", "select E'\\'"],
)
def test_unterminated_text_is_an_error(text):
    with pytest.raises(SqlLexError, match="never ends"):
        split_statements(text)


def test_plain_file_runs_whole_in_a_transaction():
    analysis = analyse(TRICKY)

    assert analysis.mode is Mode.TRANSACTION
    assert analysis.executable == TRICKY
    assert analysis.refusals == ()


def test_own_begin_commit_wrapper_is_blanked_keeping_positions():
    text = "-- wrapped\nBEGIN;\ncreate table a (id int);\nCOMMIT;\n"
    analysis = analyse(text)

    assert analysis.mode is Mode.WRAPPED
    assert len(analysis.executable) == len(text)
    assert analysis.executable.index("create table") == text.index("create table")
    assert "BEGIN" not in analysis.executable and "COMMIT" not in analysis.executable
    assert [s.words[0] for s in analysis.executed_statements] == ["CREATE"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "begin;\nselect 1;\ncommit;\nbegin;\nselect 2;\ncommit;\n",
            "BEGIN at line 1, COMMIT at line 3, BEGIN at line 4",
        ),
        ("create table a (id int);\ncommit;\n", "COMMIT at line 2"),
        ("begin isolation level serializable;\nselect 1;\ncommit;\n", "BEGIN at line 1"),
        ("begin;\nselect 1;\nrollback;\n", "ROLLBACK at line 3"),
    ],
)
def test_other_transaction_control_is_refused_with_lines(text, expected):
    [refusal] = analyse(text).refusals

    assert expected in refusal.reason
    assert "costudy:no-transaction" in refusal.reason


def test_savepoints_are_fine_inside_the_runner_transaction():
    text = "savepoint a;\nselect 1;\nrollback to savepoint a;\nrelease savepoint a;\n"

    assert analyse(text).refusals == ()


def test_commit_inside_do_block_is_refused_at_its_line():
    text = "select 1;\ndo $$\nbegin\n  perform 1;\n  commit;\nend $$;\n"
    [refusal] = analyse(text).refusals

    assert refusal.line == 2
    assert "COMMIT/ROLLBACK inside a DO block (line 5)" in refusal.reason


def test_commit_as_a_word_inside_strings_or_names_is_not_a_commit():
    text = "do $$ begin raise notice 'commit; rollback'; perform commit_ts from t; end $$;"

    assert analyse(text).refusals == ()


def test_call_of_a_committing_procedure_defined_in_the_file_is_refused():
    text = (
        "create procedure batch() language plpgsql as $$ begin commit; end $$;\n"
        'call public."batch"();\n'
    )
    [refusal] = analyse(text).refusals

    assert refusal.line == 2 and "CALL batch" in refusal.reason


@pytest.mark.parametrize(
    "statement",
    [
        "create index concurrently i on t (a)",
        "create unique index concurrently if not exists i on t (a)",
        "drop index concurrently i",
        "reindex (verbose) index concurrently i",
        "vacuum analyze t",
        "alter table p detach partition c concurrently",
    ],
)
def test_statements_postgres_refuses_in_a_transaction_need_the_directive(statement):
    [refusal] = analyse(statement + ";").refusals
    assert "cannot run inside a transaction block" in refusal.reason

    marked = analyse(f"-- costudy:no-transaction\n{statement};")
    assert marked.mode is Mode.NO_TRANSACTION and marked.refusals == ()


def test_enum_add_value_needs_no_transaction_only_before_postgres_12():
    text = "alter type mood add value 'meh' after 'ok';"

    assert analyse(text, server_version=160000).refusals == ()
    [refusal] = analyse(text, server_version=110000).refusals
    assert "ADD VALUE (on PostgreSQL 11)" in refusal.reason


def test_directives_must_be_known_and_come_first():
    misplaced = analyse("select 1;\n-- costudy:no-transaction\nselect 2;")
    unknown = analyse("-- costudy:no-transactoin\nselect 1;")

    assert misplaced.mode is Mode.TRANSACTION
    assert "must come before the first statement" in misplaced.refusals[0].reason
    assert "unknown directive costudy:no-transactoin" in unknown.refusals[0].reason


def test_psql_meta_commands_and_copy_stdin_are_refused():
    refusals = analyse("\\set ON_ERROR_STOP on\ncopy t from stdin;\n").refusals

    assert [r.line for r in refusals] == [1, 2]
    assert "psql meta-command" in refusals[0].reason and "COPY" in refusals[1].reason


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("drop table if exists t", "DROP TABLE"),
        ("drop schema s cascade", "DROP SCHEMA"),
        ("truncate t", "TRUNCATE"),
        ("alter table t drop column c", "DROP COLUMN"),
        ("alter table only t drop if exists c", "DROP COLUMN"),
        ("alter table t alter column c type integer", "TYPE"),
        ("alter table t alter type set data type varchar(10)", "TYPE"),
        ("alter table t add column n int, drop column c", "DROP COLUMN"),
    ],
)
def test_destructive_statements_are_listed(statement, reason):
    [finding] = analyse(statement + ";").destructive
    assert reason in finding.reason


@pytest.mark.parametrize(
    "statement",
    [
        "alter table t drop constraint c",
        "alter table t alter column c drop not null",
        "alter table t alter column c drop default",
        "alter table t add column type text",
        "alter table t alter column type set default 'x'",
        "drop view v",
        "drop index i",
    ],
)
def test_harmless_statements_are_not_destructive(statement):
    assert analyse(statement + ";").destructive == ()


def test_allow_directive_is_read():
    analysis = analyse("-- costudy:allow-destructive: column was unused since 2023\ndrop table t;")

    assert analysis.allows_destructive and len(analysis.destructive) == 1
