"""A PostgreSQL lexer that finds statement boundaries for analysis, never for rewriting SQL.

Transactional files are sent to the server whole, in one execute: the server parses them.
This lexer exists to *understand* a file before it runs (which statements manage transactions,
which cannot run inside one, which destroy data) and to point at the statement that failed.
It follows the server's lexical rules: `--` and nested `/* */` comments, '' and E'\\'' strings,
"quoted" identifiers, $tag$ dollar quotes, and SQL-standard `BEGIN ATOMIC ... END` bodies, so
a `;` inside any of them never ends a statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from costudy_pipelines.lib.migrations.errors import MigrationError

_IDENT_START = r"A-Za-z_\u0080-\uffff"
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_ESCAPE_PREFIXES = frozenset({"E", "e"})


@cache
def _word_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(word, dollar tag): compiled on first use, not at import. Their character class spans
    U+0080 to U+FFFF, which re compiles into a 64k-character set: ~10 ms that every process
    importing the migrations (each run, through the definitions) paid."""
    word = re.compile(rf"[{_IDENT_START}][{_IDENT_START}0-9$]*")
    dollar_tag = re.compile(rf"\$(?:[{_IDENT_START}][{_IDENT_START}0-9]*)?\$")
    return word, dollar_tag


class SqlLexError(MigrationError):
    """Unterminated string, quoted identifier, dollar quote or comment."""


class Kind(StrEnum):
    WORD = "word"  # keyword or unquoted identifier
    IDENT = "ident"  # "quoted identifier"
    STRING = "string"  # '...' / E'...'
    DOLLAR = "dollar"  # $tag$ ... $tag$
    NUMBER = "number"
    PUNCT = "punct"
    COMMENT = "comment"
    META = "meta"  # a psql backslash command: not SQL, the server cannot run it


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind is Kind.WORD else ""

    def is_word(self, *words: str) -> bool:
        return self.kind is Kind.WORD and self.text.upper() in words

    @property
    def body(self) -> tuple[str, int]:
        """For a dollar-quoted or string token: its content and the offset where it starts."""
        if self.kind is Kind.DOLLAR:
            tag_length = self.text.index("$", 1) + 1
            return self.text[tag_length:-tag_length], self.start + tag_length
        if self.kind is Kind.STRING:
            opening = self.text.index("'")
            return self.text[opening + 1 : -1].replace("''", "'"), self.start + opening + 1
        raise ValueError(f"a {self.kind} token has no body")


def line_of(text: str, offset: int) -> int:
    """1-based line number of a character offset."""
    return text.count("\n", 0, offset) + 1


class _Lexer:
    def __init__(self, text: str, *, base: int = 0) -> None:
        self.text = text
        self.base = base  # offset of `text` inside the file, for positions and line numbers
        self.pos = 0
        self.tokens: list[Token] = []

    def fail(self, what: str, start: int) -> SqlLexError:
        return SqlLexError(f"{what} starting at offset {self.base + start} never ends")

    def emit(self, kind: Kind, start: int, end: int) -> None:
        self.tokens.append(Token(kind, self.text[start:end], self.base + start, self.base + end))
        self.pos = end

    def at_line_start(self) -> bool:
        line_start = self.text.rfind("\n", 0, self.pos) + 1
        return not self.text[line_start : self.pos].strip()

    def run(self) -> list[Token]:
        text = self.text
        word_pattern, dollar_tag = _word_patterns()
        while self.pos < len(text):
            char = text[self.pos]
            if char.isspace():
                self.pos += 1
            elif text.startswith("--", self.pos):
                end = text.find("\n", self.pos)
                self.emit(Kind.COMMENT, self.pos, len(text) if end < 0 else end)
            elif text.startswith("/*", self.pos):
                self.block_comment()
            elif char == "'":
                self.string()
            elif char == '"':
                self.quoted(self.pos, '"', Kind.IDENT)
            elif char == "$" and (tag := dollar_tag.match(text, self.pos)):
                self.dollar(tag.group())
            elif char == "\\" and self.at_line_start():
                end = text.find("\n", self.pos)
                self.emit(Kind.META, self.pos, len(text) if end < 0 else end)
            elif word := word_pattern.match(text, self.pos):
                self.emit(Kind.WORD, self.pos, word.end())
            elif number := _NUMBER.match(text, self.pos):
                self.emit(Kind.NUMBER, self.pos, number.end())
            else:
                self.emit(Kind.PUNCT, self.pos, self.pos + 1)
        return self.tokens

    def block_comment(self) -> None:
        start, depth, pos = self.pos, 0, self.pos
        while pos < len(self.text):
            if self.text.startswith("/*", pos):
                depth, pos = depth + 1, pos + 2
            elif self.text.startswith("*/", pos):
                depth, pos = depth - 1, pos + 2
                if depth == 0:
                    self.emit(Kind.COMMENT, start, pos)
                    return
            else:
                pos += 1
        raise self.fail("a /* comment", start)

    def string(self) -> None:
        previous = self.tokens[-1] if self.tokens else None
        escaped = (
            previous is not None
            and previous.kind is Kind.WORD
            and previous.text in _ESCAPE_PREFIXES
            and previous.end == self.base + self.pos
        )
        start = self.pos
        if escaped:  # E'...': the prefix belongs to the string
            self.tokens.pop()
            start -= 1
        self.quoted(start, "'", Kind.STRING, backslash_escapes=escaped)

    def quoted(
        self, start: int, quote: str, kind: Kind, *, backslash_escapes: bool = False
    ) -> None:
        pos = self.text.index(quote, start) + 1
        while pos < len(self.text):
            char = self.text[pos]
            escaped = backslash_escapes and char == "\\"
            if escaped or (char == quote and self.text.startswith(quote * 2, pos)):
                pos += 2
            elif char == quote:
                self.emit(kind, start, pos + 1)
                return
            else:
                pos += 1
        raise self.fail(f"a {quote}quoted{quote} text", start)

    def dollar(self, tag: str) -> None:
        close = self.text.find(tag, self.pos + len(tag))
        if close < 0:
            raise self.fail(f"the dollar quote {tag}", self.pos)
        self.emit(Kind.DOLLAR, self.pos, close + len(tag))


def tokenize(text: str, *, base: int = 0) -> list[Token]:
    """Every token of `text`, comments included; `base` offsets positions (for nested bodies)."""
    return _Lexer(text, base=base).run()


@dataclass(frozen=True)
class Statement:
    """One top-level statement: its tokens (no comments) and where it sits in the file."""

    tokens: tuple[Token, ...]
    source: str

    @property
    def start(self) -> int:
        return self.tokens[0].start

    @property
    def end(self) -> int:
        return self.tokens[-1].end

    @property
    def text(self) -> str:
        return self.source[self.start : self.end]

    @property
    def line(self) -> int:
        return line_of(self.source, self.start)

    @property
    def words(self) -> tuple[str, ...]:
        """The unquoted words, upper-cased: what keyword checks look at."""
        return tuple(token.upper for token in self.tokens if token.kind is Kind.WORD)

    def starts_with(self, *words: str) -> bool:
        return self.words[: len(words)] == words

    @property
    def is_meta(self) -> bool:
        return self.tokens[0].kind is Kind.META

    def excerpt(self, limit: int = 160) -> str:
        """The statement on one line, shortened: for messages."""
        flat = " ".join(self.text.split())
        return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _defines_routine(tokens: list[Token]) -> bool:
    words = [token.upper for token in tokens[:4] if token.kind is Kind.WORD]
    if words[:1] != ["CREATE"]:
        return False
    rest = words[3:4] if words[1:3] == ["OR", "REPLACE"] else words[1:2]
    return rest in (["FUNCTION"], ["PROCEDURE"])


def split_statements(text: str) -> list[Statement]:
    """The top-level statements of `text`, in order; empty statements (`;;`) are dropped."""
    statements: list[Statement] = []
    current: list[Token] = []
    atomic_depth = 0  # inside CREATE FUNCTION ... BEGIN ATOMIC ... END, `;` does not end it

    def flush() -> None:
        if current:
            statements.append(Statement(tuple(current), text))
            current.clear()

    for token in tokenize(text):
        if token.kind is Kind.COMMENT:
            continue
        if token.kind is Kind.META:
            flush()
            current.append(token)
            flush()
            continue
        current.append(token)
        if token.kind is Kind.PUNCT and token.text == ";" and atomic_depth == 0:
            current.pop()
            flush()
        elif token.is_word("ATOMIC") and len(current) > 1 and current[-2].is_word("BEGIN"):
            if _defines_routine(current):
                atomic_depth = 1
        elif atomic_depth and token.is_word("CASE"):
            atomic_depth += 1
        elif atomic_depth and token.is_word("END"):
            atomic_depth -= 1
    flush()
    return statements


def comments(text: str) -> list[Token]:
    return [token for token in tokenize(text) if token.kind is Kind.COMMENT]


def blank(text: str, start: int, end: int) -> str:
    """`text` with [start, end) replaced by spaces (newlines kept): positions stay valid."""
    hole = "".join("\n" if char == "\n" else " " for char in text[start:end])
    return text[:start] + hole + text[end:]
