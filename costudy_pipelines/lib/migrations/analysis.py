"""What a migration file will do, decided before it runs.

Every file runs in one transaction unless it says otherwise, so a failure leaves nothing
behind. Some SQL cannot keep that promise, and the runner finds it before anything runs:

- a file wrapped in its own plain `BEGIN; ... COMMIT;` is fine: the wrapper is blanked out
  (positions kept) and the body runs in the runner's transaction, atomic with its record;
- any other transaction control (several transactions, `COMMIT AND CHAIN`, `ROLLBACK`,
  `PREPARE TRANSACTION`), `COMMIT`/`ROLLBACK` inside a `DO` block or inside a procedure the
  file then `CALL`s, and statements PostgreSQL refuses inside a transaction block
  (`CREATE INDEX CONCURRENTLY`, `VACUUM`, ...) are refused, unless the file starts with
  `-- costudy:no-transaction`: then it runs statement by statement in autocommit, exactly as
  written, and a failure part-way leaves the version *dirty* for an operator to resolve;
- psql meta-commands and `COPY ... FROM STDIN` are not SQL the server can run: always refused.

Destructive statements (DROP TABLE/SCHEMA, ALTER TABLE ... DROP COLUMN, TRUNCATE,
ALTER COLUMN ... TYPE except widenings such as int → bigint or varchar(n) → text) are listed so
production can refuse them unless the file carries `-- costudy:allow-destructive`. What
statements do to locks and callers is lint.py's business.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from costudy_pipelines.lib.migrations.sqltext import (
    Kind,
    Statement,
    Token,
    blank,
    comments,
    line_of,
    split_statements,
    tokenize,
)

NO_TRANSACTION = "no-transaction"
ALLOW_DESTRUCTIVE = "allow-destructive"
DIRECTIVES = (NO_TRANSACTION, ALLOW_DESTRUCTIVE)
ACKNOWLEDGE = "ack"  # `-- costudy:ack RULE` before any statement: lint.py reads those
_DIRECTIVE = re.compile(r"^--\s*costudy:\s*([A-Za-z_-]+)")

# ALTER TYPE ... ADD VALUE may run in a transaction block from PostgreSQL 12 on.
ENUM_ADD_VALUE_IN_TRANSACTION = 120000
_NO_TRANSACTION_FIX = "start the file with `-- costudy:no-transaction`"

# Commands PostgreSQL refuses inside a transaction block, by their leading words.
_OUTSIDE_TRANSACTION = (
    ("CREATE", "INDEX", "CONCURRENTLY"),
    ("CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"),
    ("DROP", "INDEX", "CONCURRENTLY"),
    ("VACUUM",),
    ("CREATE", "DATABASE"),
    ("DROP", "DATABASE"),
    ("CREATE", "TABLESPACE"),
    ("DROP", "TABLESPACE"),
    ("ALTER", "SYSTEM"),
    ("CREATE", "SUBSCRIPTION"),
    ("DROP", "SUBSCRIPTION"),
)
_PLAIN_BEGIN = {("BEGIN",), ("BEGIN", "WORK"), ("BEGIN", "TRANSACTION"), ("START", "TRANSACTION")}
_PLAIN_COMMIT = {
    (head, *rest) for head in ("COMMIT", "END") for rest in ((), ("WORK",), ("TRANSACTION",))
}
# In plpgsql, a statement starts after these: where a COMMIT would be a command, not a name.
_PLPGSQL_STATEMENT_STARTERS = frozenset({"BEGIN", "THEN", "ELSE", "LOOP"})
_NON_DESTRUCTIVE_DROPS = frozenset({"CONSTRAINT", "DEFAULT", "NOT", "EXPRESSION", "IDENTITY"})


class Mode(StrEnum):
    TRANSACTION = "transaction"  # the whole file in one execute, inside the runner's transaction
    WRAPPED = "wrapped"  # its own BEGIN ... COMMIT blanked out, then as TRANSACTION
    NO_TRANSACTION = "no-transaction"  # statement by statement in autocommit (directive)


@dataclass(frozen=True)
class Finding:
    """Something about one statement of a file: where, what, and the statement itself."""

    line: int
    reason: str
    statement: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason} [{self.statement}]"


@dataclass(frozen=True)
class FileAnalysis:
    mode: Mode
    statements: tuple[Statement, ...]
    executable: str  # what one execute sends in TRANSACTION / WRAPPED mode
    refusals: tuple[Finding, ...]  # the runner will not run this file anywhere
    destructive: tuple[Finding, ...]  # refused for production without the allow directive
    directives: frozenset[str]

    @property
    def allows_destructive(self) -> bool:
        return ALLOW_DESTRUCTIVE in self.directives

    @property
    def executed_statements(self) -> tuple[Statement, ...]:
        """The statements the server sees, in order (a wrapper's BEGIN/COMMIT are not sent)."""
        return self.statements[1:-1] if self.mode is Mode.WRAPPED else self.statements


def analyse(
    text: str,
    *,
    server_version: int = ENUM_ADD_VALUE_IN_TRANSACTION,
    no_transaction: bool = False,
) -> FileAnalysis:
    """Decide how `text` runs and what the runner refuses in it (for a server of that version).

    `no_transaction`: the file carries another tool's no-transaction marker (configured per
    database, found by discovery): as if it started with `-- costudy:no-transaction`.
    """
    statements = tuple(split_statements(text))
    directives, refusals = _directives(text, statements)
    if no_transaction:
        directives.add(NO_TRANSACTION)
    refusals += [finding for statement in statements for finding in _not_sql(statement)]
    destructive = tuple(
        Finding(statement.line, reason, statement.excerpt())
        for statement in statements
        if (reason := destructive_reason(statement))
    )
    if NO_TRANSACTION in directives:
        mode, executable = Mode.NO_TRANSACTION, text
    else:
        mode, executable, control = _transaction_mode(text, statements)
        refusals += control
        refusals += _commits_in_bodies(statements)
        refusals += [
            Finding(
                statement.line,
                f"{reason} cannot run inside a transaction block: {_NO_TRANSACTION_FIX}",
                statement.excerpt(),
            )
            for statement in statements
            if (reason := outside_transaction_reason(statement, server_version))
        ]
    return FileAnalysis(
        mode, statements, executable, tuple(refusals), destructive, frozenset(directives)
    )


def _directives(text: str, statements: tuple[Statement, ...]) -> tuple[set[str], list[Finding]]:
    """`-- costudy:NAME` comments before the first statement; misplaced or unknown ones refused."""
    first_statement = statements[0].start if statements else len(text)
    found: set[str] = set()
    refusals: list[Finding] = []
    for comment in comments(text):
        match = _DIRECTIVE.match(comment.text)
        if not match:
            continue
        name, line = match.group(1), line_of(text, comment.start)
        if name == ACKNOWLEDGE:
            continue
        if name not in DIRECTIVES:
            known = ", ".join(f"costudy:{known}" for known in DIRECTIVES)
            refusals.append(Finding(line, f"unknown directive costudy:{name} (known: {known})", ""))
        elif comment.start > first_statement:
            reason = f"directive costudy:{name} must come before the first statement"
            refusals.append(Finding(line, reason, comment.text))
        else:
            found.add(name)
    return found, refusals


def _not_sql(statement: Statement) -> Iterator[Finding]:
    if statement.is_meta:
        yield Finding(
            statement.line,
            "psql meta-command: not SQL, the server cannot run it (remove it)",
            statement.excerpt(),
        )
    elif statement.starts_with("COPY") and {"STDIN", "STDOUT"} & set(statement.words):
        yield Finding(
            statement.line,
            "COPY from STDIN / to STDOUT needs psql's data stream: use INSERT, or COPY with a "
            "server-side file",
            statement.excerpt(),
        )


def transaction_control(statement: Statement) -> str | None:
    """'begin' / 'commit' for the plain forms a wrapper uses, 'other' for any other control."""
    words = statement.words
    if statement.starts_with("BEGIN") or statement.starts_with("START", "TRANSACTION"):
        return "begin" if words in _PLAIN_BEGIN else "other"
    if words[:1] in (("COMMIT",), ("END",)):
        return "commit" if words in _PLAIN_COMMIT else "other"
    if words[:1] in (("ROLLBACK",), ("ABORT",)):
        # ROLLBACK TO SAVEPOINT works inside the runner's transaction like SAVEPOINT does.
        return None if "TO" in words[1:3] else "other"
    if statement.starts_with("PREPARE", "TRANSACTION"):
        return "other"
    return None


def _transaction_mode(
    text: str, statements: tuple[Statement, ...]
) -> tuple[Mode, str, list[Finding]]:
    controls = [
        (statement, kind) for statement in statements if (kind := transaction_control(statement))
    ]
    if not controls:
        return Mode.TRANSACTION, text, []
    first, last = statements[0], statements[-1]
    if len(statements) > 1 and controls == [(first, "begin"), (last, "commit")]:
        unwrapped = blank(blank(text, last.start, last.end), first.start, first.end)
        return Mode.WRAPPED, unwrapped, []
    where = ", ".join(f"{statement.words[0]} at line {statement.line}" for statement, _ in controls)
    reason = (
        f"the file manages its own transactions ({where}), so the runner cannot make it "
        "atomic: wrap the whole file in one BEGIN … COMMIT, split it into files, or "
        f"{_NO_TRANSACTION_FIX} to run it statement by statement (a failure then leaves the "
        "version dirty)"
    )
    return Mode.TRANSACTION, text, [Finding(controls[0][0].line, reason, controls[0][0].excerpt())]


def outside_transaction_reason(statement: Statement, server_version: int) -> str | None:
    """The command's name when PostgreSQL refuses to run it inside a transaction block."""
    for head in _OUTSIDE_TRANSACTION:
        if statement.starts_with(*head):
            return " ".join(head)
    words = statement.words
    if statement.starts_with("REINDEX") and "CONCURRENTLY" in words:
        return "REINDEX CONCURRENTLY"
    if statement.starts_with("ALTER", "TABLE") and "DETACH" in words and "CONCURRENTLY" in words:
        return "ALTER TABLE … DETACH PARTITION … CONCURRENTLY"
    if (
        server_version < ENUM_ADD_VALUE_IN_TRANSACTION
        and statement.starts_with("ALTER", "TYPE")
        and _follows(words, "ADD", "VALUE")
    ):
        return f"ALTER TYPE … ADD VALUE (on PostgreSQL {server_version // 10000})"
    return None


def _follows(words: tuple[str, ...], first: str, second: str) -> bool:
    return (first, second) in itertools.pairwise(words)


def _commits_in_bodies(statements: tuple[Statement, ...]) -> Iterator[Finding]:
    """COMMIT/ROLLBACK in DO blocks, and CALLs of procedures this file defines that commit."""
    committing: dict[str, int] = {}  # procedure name -> line of its COMMIT
    for statement in statements:
        if statement.starts_with("DO"):
            for line in _body_commit_lines(statement):
                yield Finding(
                    statement.line,
                    f"COMMIT/ROLLBACK inside a DO block (line {line}) only works outside a "
                    f"transaction: {_NO_TRANSACTION_FIX}, or drop the COMMIT",
                    statement.excerpt(),
                )
        elif (name := _routine_name(statement, "PROCEDURE")) and (
            lines := _body_commit_lines(statement)
        ):
            committing[name] = lines[0]
        elif (
            statement.starts_with("CALL")
            and (name := name_after(statement.tokens, 0)) in committing
        ):
            yield Finding(
                statement.line,
                f"CALL {name} runs a procedure that COMMITs (line {committing[name]}), which "
                f"only works outside a transaction: {_NO_TRANSACTION_FIX}",
                statement.excerpt(),
            )


def _routine_name(statement: Statement, kind: str) -> str | None:
    words = statement.words
    offset = 3 if words[1:3] == ("OR", "REPLACE") else 1
    if words[:1] != ("CREATE",) or words[offset : offset + 1] != (kind,):
        return None
    keyword = next(i for i, token in enumerate(statement.tokens) if token.is_word(kind))
    return name_after(statement.tokens, keyword)


def name_after(tokens: tuple[Token, ...], index: int) -> str | None:
    """The last part of the (possibly schema-qualified) name after tokens[index]."""
    name = None
    for token in tokens[index + 1 :]:
        if token.kind is Kind.WORD:
            name = token.text.lower()
        elif token.kind is Kind.IDENT:
            name = token.text[1:-1].replace('""', '"')
        elif token.text != ".":
            break
    return name


def _body_commit_lines(statement: Statement) -> list[int]:
    """Lines of COMMIT/ROLLBACK commands in the plpgsql bodies ($$...$$ or '...') of a statement."""
    lines = []
    for token in statement.tokens:
        if token.kind not in (Kind.DOLLAR, Kind.STRING):
            continue
        body, offset = token.body
        previous: Token | None = None
        for inner in tokenize(body, base=offset):
            if inner.kind is Kind.COMMENT:
                continue
            at_statement_start = (
                previous is None
                or previous.text == ";"
                or (previous.upper in _PLPGSQL_STATEMENT_STARTERS)
            )
            if at_statement_start and inner.is_word("COMMIT", "ROLLBACK"):
                lines.append(line_of(statement.source, inner.start))
            previous = inner
    return lines


# Target types every value of a narrower type of the same family fits into, unchanged.
WIDE_TYPES = frozenset(
    {("BIGINT",), ("INT8",), ("TEXT",), ("VARCHAR",), ("CHARACTER", "VARYING"), ("NUMERIC",)}
    | {("DECIMAL",), ("DOUBLE", "PRECISION"), ("FLOAT8",)}
)
# Of those, the ones PostgreSQL switches to without rewriting the table.
NO_REWRITE_TYPES = frozenset({("TEXT",), ("VARCHAR",), ("CHARACTER", "VARYING")})


def words_of(tokens: tuple[Token, ...]) -> tuple[str, ...]:
    return tuple(token.upper for token in tokens if token.kind is Kind.WORD)


def type_change(action: tuple[Token, ...]) -> tuple[tuple[str, ...], bool, bool] | None:
    """For `ALTER [COLUMN] c [SET DATA] TYPE t [USING …]`: (t's words, t has a modifier such
    as (20), a USING clause is given); None for any other action."""
    words = words_of(action)
    column = 2 if words[1:2] == ("COLUMN",) else 1  # the column may well be called "type"
    if words[:1] != ("ALTER",) or "TYPE" not in words[column + 1 :]:
        return None
    uppers = [token.upper for token in action]
    after = action[uppers.index("TYPE", column + 1) + 1 :]
    type_words: list[str] = []
    modifier = False
    for token in after:
        if token.is_word("USING", "COLLATE"):
            break
        if token.kind is Kind.PUNCT and token.text == "(":
            modifier = True
        elif token.kind is Kind.WORD and not modifier:
            type_words.append(token.upper)
    return tuple(type_words), modifier, "USING" in words_of(after)


def is_widening(change: tuple[tuple[str, ...], bool, bool]) -> bool:
    """A type change no value can lose data in: to bigint, text, unbounded varchar/numeric."""
    type_words, modifier, using = change
    return type_words in WIDE_TYPES and not modifier and not using


def destructive_reason(statement: Statement) -> str | None:
    """What data the statement destroys, or None."""
    for head in (("DROP", "TABLE"), ("DROP", "SCHEMA"), ("TRUNCATE",)):
        if statement.starts_with(*head):
            return " ".join(head)
    if statement.starts_with("ALTER", "TABLE"):
        return _alter_table_destruction(statement.tokens)
    return None


def _alter_table_destruction(tokens: tuple[Token, ...]) -> str | None:
    depth = 0
    for index, token in enumerate(tokens[2:], start=2):
        if token.text in "()" and token.kind is Kind.PUNCT:
            depth += 1 if token.text == "(" else -1
            continue
        if depth:
            continue
        following = tokens[index + 1 : index + 7]
        if (
            token.is_word("DROP")
            and following
            and not following[0].is_word(*_NON_DESTRUCTIVE_DROPS)
        ):
            return "ALTER TABLE … DROP COLUMN"
        if token.is_word("ALTER") and _changes_type(following):
            change = type_change(_action_at(tokens, index))
            if change is None or not is_widening(change):
                return "ALTER TABLE … ALTER COLUMN … TYPE"
    return None


def _action_at(tokens: tuple[Token, ...], start: int) -> tuple[Token, ...]:
    """The ALTER TABLE action starting at tokens[start]: up to the next top-level comma."""
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token.kind is Kind.PUNCT and token.text in "(),":
            if token.text == "," and depth == 0:
                return tokens[start:index]
            depth += {"(": 1, ")": -1, ",": 0}[token.text]
    return tokens[start:]


def _changes_type(after_alter: tuple[Token, ...]) -> bool:
    """ALTER [COLUMN] name [SET DATA] TYPE: the tokens after ALTER name a column type change."""
    rest = list(after_alter)
    if rest and rest[0].is_word("COLUMN"):
        rest = rest[1:]
    rest = rest[1:]  # the column name (a column may well be called "type")
    if rest[:2] and rest[0].is_word("SET") and len(rest) > 2 and rest[1].is_word("DATA"):
        rest = rest[2:]
    return bool(rest) and rest[0].is_word("TYPE")
