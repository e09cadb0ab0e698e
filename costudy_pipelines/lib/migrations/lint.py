"""What a migration does to a live database's locks and callers, found before it runs.

Each rule says why the statement hurts on a busy database and the safe way to write it. A
finding is acknowledged, statement by statement, by a comment before (or inside) it:

    -- costudy:ack index-not-concurrent: the table has 40 rows
    create index accounts_plan_idx on accounts (plan);

Statements on tables created earlier in the same file are not flagged: nobody uses those yet.
`error`: the statement fails or blocks writes on a non-empty table; `warning`: it may break
running code or hold a strong lock longer than needed. Statements built at run time (EXECUTE in
a DO block) cannot be seen, which is itself a finding.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from costudy_pipelines.lib.migrations.analysis import (
    NO_REWRITE_TYPES,
    is_widening,
    type_change,
    words_of,
)
from costudy_pipelines.lib.migrations.discovery import PLACEHOLDER
from costudy_pipelines.lib.migrations.sqltext import (
    Kind,
    Statement,
    Token,
    comments,
    split_statements,
    tokenize,
)

_ACK = re.compile(r"^--\s*costudy:\s*ack\s+(?P<codes>[a-z-]+(?:\s*,\s*[a-z-]+)*)")


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    reason: str
    safe: str


RULES = {
    rule.code: rule
    for rule in (
        Rule(
            "index-not-concurrent",
            Severity.ERROR,
            "CREATE INDEX without CONCURRENTLY blocks every write to the table while it builds",
            "CREATE INDEX CONCURRENTLY in a file of its own marked `-- costudy:no-transaction`",
        ),
        Rule(
            "add-not-null-column",
            Severity.ERROR,
            "ADD COLUMN … NOT NULL without a DEFAULT fails as soon as the table has a row",
            "add it with a DEFAULT, or add it nullable, backfill, then SET NOT NULL behind a "
            "validated CHECK (col IS NOT NULL)",
        ),
        Rule(
            "set-not-null",
            Severity.WARNING,
            "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock",
            "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c; then SET "
            "NOT NULL (PostgreSQL uses the validated check and skips the scan)",
        ),
        Rule(
            "foreign-key-validating",
            Severity.WARNING,
            "ADD FOREIGN KEY checks every row while blocking writes to both tables",
            "ADD CONSTRAINT … FOREIGN KEY … NOT VALID, then VALIDATE CONSTRAINT (a weaker lock)",
        ),
        Rule(
            "rename",
            Severity.WARNING,
            "a rename breaks every running query and deployed version that uses the old name",
            "expand and contract: add the new name (column, view), move callers, drop the old "
            "name a release later",
        ),
        Rule(
            "drop-object",
            Severity.WARNING,
            "dropping an index, view, function or type breaks (or slows) whatever still uses it",
            "drop it a release after its last caller is gone; an index with DROP INDEX "
            "CONCURRENTLY in a `-- costudy:no-transaction` file",
        ),
        Rule(
            "unbounded-write",
            Severity.ERROR,
            "DELETE/UPDATE without WHERE touches every row: one long lock and transaction",
            "add the WHERE it needs; for a backfill, update in batches by key range",
        ),
        Rule(
            "dynamic-sql",
            Severity.WARNING,
            "EXECUTE in a DO block runs SQL built at run time, which no check here can see",
            "write the statements out, or acknowledge after reviewing what the block builds",
        ),
        Rule(
            "lock-table",
            Severity.WARNING,
            "LOCK TABLE queues every later query on the table behind it while it waits",
            "let the statements take the locks they need (bounded by lock_timeout), or LOCK "
            "TABLE … NOWAIT",
        ),
        Rule(
            "add-column-volatile-default",
            Severity.WARNING,
            "ADD COLUMN with a volatile DEFAULT (random(), gen_random_uuid(), clock_timestamp(), "
            "nextval/serial …) rewrites the whole table under an ACCESS EXCLUSIVE lock; a "
            "constant or now() does not",
            "add the column without the default (or with a constant), SET DEFAULT after, and "
            "backfill existing rows in batches",
        ),
        Rule(
            "add-column-constraint",
            Severity.WARNING,
            "a FOREIGN KEY (REFERENCES) or CHECK declared inline in ADD COLUMN is validated at "
            "once, under the ACCESS EXCLUSIVE lock (and a lock on the referenced table): it "
            "cannot be NOT VALID",
            "add the column bare, then ADD CONSTRAINT … NOT VALID and VALIDATE CONSTRAINT in "
            "a later statement",
        ),
        Rule(
            "drop-trigger",
            Severity.WARNING,
            "DROP TRIGGER takes an ACCESS EXCLUSIVE lock on its table and silently stops what "
            "the trigger kept up to date (audit rows, counters, denormalised columns)",
            "drop it a release after nothing relies on it, with a short lock_timeout",
        ),
        Rule(
            "type-change-rewrite",
            Severity.WARNING,
            "ALTER COLUMN … TYPE rewrites the table under an ACCESS EXCLUSIVE lock (a widening "
            "like int → bigint keeps the data but still rewrites)",
            "add a column of the new type, backfill in batches, switch callers, drop the old",
        ),
    )
}


@dataclass(frozen=True)
class LintFinding:
    rule: Rule
    line: int
    statement: str
    acknowledged: bool

    def __str__(self) -> str:
        rule = self.rule
        return (
            f"line {self.line}: {rule.severity} {rule.code}: {rule.reason} [{self.statement}]; "
            f"instead: {rule.safe} (or acknowledge with `-- costudy:ack {rule.code}` before it)"
        )


_CLAUSE_STARTS = frozenset(
    {"CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "EXCLUDE", "COLUMN", "IF"}
)


def _depth_zero(tokens: tuple[Token, ...]) -> Iterator[tuple[int, Token]]:
    """(index, token) of the tokens outside any parentheses."""
    depth = 0
    for index, token in enumerate(tokens):
        if token.kind is Kind.PUNCT and token.text == "(":
            depth += 1
        elif token.kind is Kind.PUNCT and token.text == ")":
            depth -= 1
        elif depth == 0:
            yield index, token


def _actions(statement: Statement) -> list[tuple[Token, ...]]:
    """An ALTER TABLE's comma-separated actions, after `ALTER TABLE [IF EXISTS] [ONLY] name`."""
    tokens = statement.tokens
    start = 2
    while start < len(tokens) and tokens[start].is_word("IF", "EXISTS", "ONLY"):
        start += 1
    start += 1
    while start < len(tokens) and tokens[start].text == ".":
        start += 2
    actions: list[tuple[Token, ...]] = []
    current: list[Token] = []
    commas = {index for index, token in _depth_zero(tokens) if token.text == ","}
    for index in range(start, len(tokens)):
        if index in commas:
            actions.append(tuple(current))
            current = []
        else:
            current.append(tokens[index])
    return [*actions, tuple(current)] if current else actions


def _pairs(words: tuple[str, ...]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(words))


def _table(statement: Statement, keyword_index: int) -> str | None:
    """The (last part of the) name after tokens[keyword_index], past IF [NOT] EXISTS / ONLY."""
    tokens = statement.tokens
    index = keyword_index + 1
    while index < len(tokens) and tokens[index].is_word("IF", "NOT", "EXISTS", "ONLY"):
        index += 1
    name, expect_name = None, True
    for token in tokens[index:]:
        if expect_name and token.kind in (Kind.WORD, Kind.IDENT):
            name = token.text.lower() if token.kind is Kind.WORD else token.text[1:-1]
            expect_name = False
        elif not expect_name and token.text == ".":
            expect_name = True
        else:
            break
    return name


def _index_of(statement: Statement, word: str) -> int | None:
    return next(
        (index for index, token in _depth_zero(statement.tokens) if token.is_word(word)), None
    )


# Functions whose value changes row by row: a DEFAULT calling one makes ADD COLUMN rewrite.
VOLATILE_DEFAULTS = frozenset(
    {
        "RANDOM",
        "GEN_RANDOM_UUID",
        "UUID_GENERATE_V1",
        "UUID_GENERATE_V1MC",
        "UUID_GENERATE_V4",
        "UUIDV7",
        "UUID_GENERATE_V7",
        "CLOCK_TIMESTAMP",
        "TIMEOFDAY",
        "NEXTVAL",
        "TXID_CURRENT",
        "GEN_RANDOM_BYTES",
    }
)
SERIAL_TYPES = frozenset({"SERIAL", "BIGSERIAL", "SMALLSERIAL", "SERIAL4", "SERIAL8", "SERIAL2"})


def _adds_column(words: tuple[str, ...]) -> bool:
    return (
        words[:1] == ("ADD",)
        and words[1:2] != ()
        and (words[1] not in _CLAUSE_STARTS or words[1:2] in (("COLUMN",), ("IF",)))
    )


def _add_column_codes(action: tuple[Token, ...]) -> Iterator[str]:
    """What an ADD COLUMN action does beyond adding a column: a rewrite, a validation."""
    words = words_of(action)
    after_default = words[words.index("DEFAULT") + 1 :] if "DEFAULT" in words else ()
    if VOLATILE_DEFAULTS & set(after_default) or SERIAL_TYPES & set(words):
        yield "add-column-volatile-default"
    top = {token.upper for _, token in _depth_zero(action) if token.kind is Kind.WORD}
    if {"REFERENCES", "CHECK"} & top and ("NOT", "VALID") not in _pairs(words):
        yield "add-column-constraint"


def _alter_table_codes(
    statement: Statement, table: str | None, validated: set[str | None]
) -> Iterator[str]:
    if "RENAME" in statement.words:
        yield "rename"
        return
    for action in _actions(statement):
        words = words_of(action)
        pairs = _pairs(words)
        if _adds_column(words):
            yield from _add_column_codes(action)
        if words[:1] == ("ADD",) and "FOREIGN" in words and ("NOT", "VALID") not in pairs:
            yield "foreign-key-validating"
        elif (
            _adds_column(words)
            and ("NOT", "NULL") in pairs
            and "DEFAULT" not in words
            and "GENERATED" not in words
        ):
            yield "add-not-null-column"
        elif ("SET", "NOT") in pairs and words[-2:] == ("NOT", "NULL") and table not in validated:
            yield "set-not-null"
        elif (change := type_change(action)) is not None and (
            not is_widening(change) or change[0] not in NO_REWRITE_TYPES
        ):
            yield "type-change-rewrite"


def _dynamic_sql(statement: Statement) -> bool:
    for token in statement.tokens:
        if token.kind in (Kind.DOLLAR, Kind.STRING):
            body, offset = token.body
            if any(inner.is_word("EXECUTE") for inner in tokenize(body, base=offset)):
                return True
    return False


def _codes(statement: Statement, created: set[str], validated: set[str | None]) -> Iterator[str]:
    """The rules `statement` breaks, given the tables the file created and validated before."""
    words = statement.words
    if statement.starts_with("CREATE", "INDEX") or statement.starts_with(
        "CREATE", "UNIQUE", "INDEX"
    ):
        on = _index_of(statement, "ON")
        if "CONCURRENTLY" not in words and on is not None and _table(statement, on) not in created:
            yield "index-not-concurrent"
    elif statement.starts_with("ALTER", "TABLE"):
        table = _table(statement, 1)
        if table not in created:
            yield from _alter_table_codes(statement, table, validated)
    elif words[:1] == ("ALTER",) and "RENAME" in words and words[1:2] != ("INDEX",):
        yield "rename"
    elif words[:1] == ("DROP",) and words[1:2] in (
        ("INDEX",),
        ("VIEW",),
        ("MATERIALIZED",),
        ("FUNCTION",),
        ("PROCEDURE",),
        ("TYPE",),
    ):
        if words[1:3] != ("INDEX", "CONCURRENTLY"):
            yield "drop-object"
    elif words[:2] == ("DROP", "TRIGGER"):
        yield "drop-trigger"
    elif words[:1] in (("DELETE",), ("UPDATE",)):
        keyword = 1 if words[0] == "DELETE" else 0  # DELETE FROM t / UPDATE t
        if _index_of(statement, "WHERE") is None and _table(statement, keyword) not in created:
            yield "unbounded-write"
    elif words[:1] == ("DO",) and _dynamic_sql(statement):
        yield "dynamic-sql"
    elif words[:1] == ("LOCK",) and "NOWAIT" not in words:
        yield "lock-table"


def _acknowledged(text: str, statements: list[Statement]) -> list[set[str]]:
    """Per statement, the rule codes its `-- costudy:ack` comments name (before or inside it)."""
    acks: list[set[str]] = [set() for _ in statements]
    starts = [0] + [statement.end for statement in statements[:-1]]
    for comment in comments(text):
        match = _ACK.match(comment.text)
        if not match:
            continue
        for index, statement in enumerate(statements):
            if starts[index] <= comment.start < statement.end:
                acks[index] |= {code.strip() for code in match["codes"].split(",")}
                break
    return acks


def lint(text: str, placeholders: re.Pattern[str] = PLACEHOLDER) -> list[LintFinding]:
    """Every finding in a migration's text, acknowledged or not, in statement order.

    A placeholder (`${name}`, or the folder's own syntax given as `placeholders`) reads as the
    word `name`: `${schema}.notes` is still table notes, whatever value an environment gives it.
    """
    text = placeholders.sub(lambda match: match[1], text)
    statements = split_statements(text)
    acks = _acknowledged(text, statements)
    created: set[str] = set()
    validated: set[str | None] = set()
    findings = []
    for statement, acknowledged in zip(statements, acks, strict=True):
        findings += [
            LintFinding(RULES[code], statement.line, statement.excerpt(), code in acknowledged)
            for code in _codes(statement, created, validated)
        ]
        if statement.starts_with("CREATE", "TABLE") or statement.starts_with(
            "CREATE", "UNLOGGED", "TABLE"
        ):
            created.add(_table(statement, statement.words.index("TABLE")) or "")
        elif statement.starts_with("ALTER", "TABLE") and "VALIDATE" in statement.words:
            validated.add(_table(statement, 1))
    return findings


def unknown_acknowledgements(text: str) -> list[str]:
    """`-- costudy:ack` comments naming no rule: a typo would silently acknowledge nothing."""
    return [
        f"unknown rule {code!r} in `{comment.text.strip()}` (rules: {', '.join(RULES)})"
        for comment in comments(text)
        if (match := _ACK.match(comment.text))
        for code in (code.strip() for code in match["codes"].split(","))
        if code not in RULES
    ]
