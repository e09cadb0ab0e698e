"""Send SQL text to the server in one round trip and say precisely what failed.

A whole file goes in one simple-query message (psycopg 3 sends text without parameters that
way), so the server parses it: dollar-quoted bodies, DO blocks and `BEGIN ATOMIC` need no
client-side splitting. The server answers with one result per statement; the first error
result tells us how many statements completed, and its error position (when it has one)
points into the text. Either way we can cut out the failing statement and its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import generators, pq
from psycopg.pq.abc import PGresult

from costudy_pipelines.lib.migrations.errors import MigrationError
from costudy_pipelines.lib.migrations.sqltext import Statement, line_of

_FIELD = pq.DiagnosticField
_OK = frozenset({pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY})

# What to do about server errors that come from how a file is written, not from its content.
HINTS = {
    "25001": "this statement cannot run inside a transaction: start the file with "
    "`-- costudy:no-transaction`",
    "2D000": "the file ends a transaction inside a DO block or procedure: start the file "
    "with `-- costudy:no-transaction`",
    "55P04": "a value added by ALTER TYPE … ADD VALUE cannot be used in the same transaction: "
    "move the statements that use it to the next file",
}


@dataclass(frozen=True)
class ServerError:
    """The server's own report of an error, as the diagnostic fields it sent."""

    sqlstate: str
    message: str
    detail: str | None = None
    hint: str | None = None
    position: int | None = None  # 1-based character position in the text that was sent
    context: str | None = None

    @classmethod
    def from_result(cls, result: PGresult, encoding: str) -> ServerError:
        def field(name: _FIELD) -> str | None:
            value = result.error_field(name)
            return value.decode(encoding, "replace") if value is not None else None

        position = field(_FIELD.STATEMENT_POSITION)
        return cls(
            sqlstate=field(_FIELD.SQLSTATE) or "",
            message=field(_FIELD.MESSAGE_PRIMARY) or result.get_error_message(encoding),
            detail=field(_FIELD.MESSAGE_DETAIL),
            hint=field(_FIELD.MESSAGE_HINT),
            position=int(position) if position else None,
            context=field(_FIELD.CONTEXT),
        )

    def describe(self) -> str:
        parts = [f"{self.message} (SQLSTATE {self.sqlstate})"]
        parts += [f"detail: {self.detail}"] if self.detail else []
        parts += [f"hint: {self.hint}"] if self.hint else []
        parts += [f"context: {self.context.splitlines()[0]}"] if self.context else []
        if self.sqlstate in HINTS:
            parts.append(f"fix: {HINTS[self.sqlstate]}")
        return "; ".join(parts)


class ScriptError(Exception):
    """A statement of a script failed: `completed` statements before it succeeded."""

    def __init__(self, error: ServerError, completed: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.completed = completed


def run_script(conn: psycopg.Connection, sql: str) -> int:
    """Execute `sql` (any number of statements) in one round trip; return the statement count.

    The caller decides the transaction: inside `conn.transaction()` the whole text is atomic.
    """
    encoding = conn.info.encoding
    conn.pgconn.send_query(sql.encode(encoding))
    results = conn.wait(generators.execute(conn.pgconn))
    for index, result in enumerate(results):
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise ScriptError(ServerError.from_result(result, encoding), completed=index)
        if result.status not in _OK:
            # COPY is refused by analysis; anything else here would leave the session unusable.
            conn.close()
            raise MigrationError(f"unexpected server reply {result.status.name} to a migration")
    return len(results)


def failed_statement(
    statements: Sequence[Statement], failure: ScriptError, *, offset: int = 0
) -> Statement | None:
    """The statement that failed: by the server's error position, else by the result count.

    `offset` is where the text that was sent starts in the file (for one-statement sends).
    """
    if failure.error.position is not None:
        position = offset + failure.error.position - 1
        for statement in reversed(statements):
            if statement.start <= position:
                return statement
    if failure.completed < len(statements):
        return statements[failure.completed]
    return None


def describe_failure(
    file_label: str,
    source: str,
    statement: Statement | None,
    failure: ScriptError,
    *,
    offset: int = 0,
    consequence: str,
) -> str:
    """`<file> failed at line N: <statement>: <server message>. <consequence>`"""
    line: int | None = (
        line_of(source, offset + failure.error.position - 1)
        if failure.error.position is not None
        else (statement.line if statement else None)
    )
    where = f"{file_label} failed" + (f" at line {line}" if line else "")
    shown = f" in statement [{statement.excerpt()}]" if statement else ""
    return f"{where}{shown}: {failure.error.describe().rstrip('.')}. {consequence}"
