"""The lock and caller rules: each flags its statement, honours an acknowledgement, and leaves the
safe form alone; widenings are not destructive; `validate --offline` exits by the findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from costudy_pipelines.lib.migrations import analyse
from costudy_pipelines.lib.migrations.lint import RULES, Severity, lint
from costudy_pipelines_tests.lib.migrations.support import Cli, write_files

# rule: (flagged statement, its safe form)
CASES = {
    "index-not-concurrent": (
        "create index accounts_email_idx on accounts (email)",
        "create index concurrently accounts_email_idx on accounts (email)",
    ),
    "add-not-null-column": (
        "alter table accounts add column plan text not null",
        "alter table accounts add column plan text not null default 'free'",
    ),
    "set-not-null": (
        "alter table accounts alter column email set not null",
        "alter table accounts add constraint email_nn check (email is not null) not valid;\n"
        "alter table accounts validate constraint email_nn;\n"
        "alter table accounts alter column email set not null",
    ),
    "foreign-key-validating": (
        "alter table orders add constraint orders_account_fk foreign key (account_id)"
        " references accounts (id)",
        "alter table orders add constraint orders_account_fk foreign key (account_id)"
        " references accounts (id) not valid",
    ),
    "rename": (
        "alter table accounts rename column email to mail",
        "alter table accounts add column mail text",
    ),
    "drop-object": ("drop index accounts_email_idx", "drop index concurrently accounts_email_idx"),
    "unbounded-write": (
        "update accounts set plan = (select 'x' where true)",
        "update accounts set plan = 'free' where plan is null",
    ),
    "dynamic-sql": (
        "do $$ begin execute format('analyze %I', 'accounts'); end $$",
        "do $$ begin perform 1; end $$",
    ),
    "lock-table": ("lock table accounts in exclusive mode", "lock table accounts nowait"),
    "type-change-rewrite": (
        "alter table accounts alter column id type bigint",
        "alter table accounts alter column email type text",
    ),
    "add-column-volatile-default": (
        "alter table accounts add column token uuid default gen_random_uuid()",
        "alter table accounts add column seen_at timestamptz default now()",
    ),
    "add-column-constraint": (
        "alter table orders add column coupon_id bigint references coupons (id)",
        "alter table orders add column coupon_id bigint",
    ),
    "drop-trigger": (
        "drop trigger accounts_audit on accounts",
        "alter table accounts disable trigger accounts_audit",
    ),
}


def test_every_rule_has_a_case():
    assert set(CASES) == set(RULES)


@pytest.mark.parametrize(
    ("sql", "codes"),
    [
        ("alter table a add column n bigserial", ["add-column-volatile-default"]),
        (
            "alter table a add column r float8 default random() not null",
            ["add-column-volatile-default"],
        ),
        ("alter table a add column k int default 0 not null", []),
        ("alter table a add column p int check (p > 0)", ["add-column-constraint"]),
        (
            "alter table a add column p int constraint p_pos check (p > 0)",
            ["add-column-constraint"],
        ),
        (
            "alter table a add column b_id int references b, add column c int not null",
            ["add-column-constraint", "add-not-null-column"],
        ),
        ("alter table a add constraint p_pos check (p > 0) not valid", []),
        ("drop trigger if exists t on a", ["drop-trigger"]),
    ],
)
def test_add_column_and_trigger_rules(sql: str, codes: list[str]):
    assert [finding.rule.code for finding in lint(sql)] == codes


def _codes(sql: str) -> list[tuple[str, bool]]:
    return [(finding.rule.code, finding.acknowledged) for finding in lint(sql)]


@pytest.mark.parametrize("code", list(CASES))
def test_rule_flags_is_acknowledged_and_spares_the_safe_form(code: str):
    flagged, safe = CASES[code]
    acknowledged = f"select 1;\n-- costudy:ack {code}: reviewed, the table is small\n{flagged};\n"

    [finding] = lint(f"select 1;\n{flagged};\n")

    assert finding.rule.code == code and finding.line == 2 and not finding.acknowledged
    assert str(finding).startswith(f"line 2: {finding.rule.severity} {code}: ")
    assert f"instead: {RULES[code].safe}" in str(finding)
    assert _codes(acknowledged) == [(code, True)]
    assert _codes(f"{safe};\n") == []


def test_statements_on_a_table_made_in_the_same_file_are_not_flagged():
    sql = """
        create table notes (id bigint primary key, body text);
        create index notes_body_idx on notes (body);
        alter table notes add column owner text not null;
        delete from notes;
    """
    assert lint(sql) == []


def test_placeholders_read_as_names():
    sql = "create table ${schema}.notes (id int);\ncreate index i on ${schema}.notes (id);\n"

    assert lint(sql) == []
    assert _codes("create index i on ${schema}.accounts (id);") == [("index-not-concurrent", False)]


def test_acknowledging_one_rule_leaves_the_others():
    sql = "-- costudy:ack rename\nalter table a rename to b;\ncreate index i on a (x);\n"

    assert _codes(sql) == [("rename", True), ("index-not-concurrent", False)]


@pytest.mark.parametrize(
    ("change", "destructive"),
    [
        ("type bigint", False),
        ("type text", False),
        ("set data type varchar", False),
        ("type numeric", False),
        ("type integer", True),
        ("type varchar(20)", True),
        ("type numeric(10, 2)", True),
        ("type bigint using id::bigint", True),
    ],
)
def test_widenings_are_told_apart_from_narrowings(change: str, destructive: bool):
    analysis = analyse(f"alter table accounts alter column id {change};")

    assert bool(analysis.destructive) is destructive


def test_validate_offline_exits_by_the_findings(tmp_path: Path, folder: Path, cli: Cli):
    write_files(folder, {"004-index.sql": "create index accounts_plan_idx on accounts (email);"})
    failing = cli("validate", "--offline")
    write_files(
        folder,
        {
            "004-index.sql": "-- costudy:ack index-not-concurrent\n"
            + "create index accounts_plan_idx on accounts (email);"
        },
    )
    write_files(folder, {"005-rename.sql": "alter table orders rename column amount to total;"})
    warned = cli("validate", "--offline")
    strict = cli("validate", "--offline", "--strict")
    write_files(folder, {"006-typo.sql": "-- costudy:ack index-not-concurent\nselect 1;"})
    typo = cli("validate", "--offline")

    assert RULES["index-not-concurrent"].severity is Severity.ERROR
    assert failing.exit_code == 1
    assert "problem: 004-index.sql line 1: error index-not-concurrent" in failing.output
    assert warned.exit_code == 0 and "valid (1 warnings)" in warned.output
    assert "warning: 005-rename.sql line 1: warning rename" in warned.output
    assert "acknowledged: 004-index.sql line 2: error index-not-concurrent" in warned.output
    assert strict.exit_code == 1
    assert typo.exit_code == 1 and "unknown rule 'index-not-concurent'" in typo.output
