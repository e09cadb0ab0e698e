"""Elective payment exports: CSV files in a drop folder, read in bounded chunks.

Elective has no API. Its Orders export comes in two known layouts (below); the layout is
detected from the header row and mapped to one set of field names, so downstream code sees
the same keys whatever the export. No email column is documented: when an export has one
(any of `email_headers`) it fills `email`, otherwise `email` is None and validation rejects
the row as "cannot be tied to a person" (kept, visible, replayable), never guessed from a name.

Each record: the mapped fields (cell text exactly as in the file, "" for an empty cell, None
for a field the layout lacks), `email`, `_extra` (unmapped columns by header), and
provenance `_file` (file name), `_line` (line where the row starts) and `_layout`.

A file still being written is not taken: modified less than `settle_seconds` ago, empty, or
without a trailing newline. A file that changes while it is read is an error, so its rows are
not loaded half. The csv module streams, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import _csv
import csv
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from costudy_pipelines.lib.clients.base import Page, Record, chunked

FIELDS = (
    "purchased_at",
    "name",
    "product",
    "currency",
    "order_total",
    "term_months",
    "first_payment",
    "fees",
    "net_amount",
    "type",
    "status",
)


@dataclass(frozen=True)
class CsvLayout:
    """A known export layout: field name -> header text (all headers must be present)."""

    name: str
    columns: Mapping[str, str]


ORDERS_LAYOUT = CsvLayout(
    "orders",
    {
        "purchased_at": "Purchase Date (UTC)",
        "name": "Student Name",
        "product": "Product Purchased",
        "currency": "Currency",
        "order_total": "Order Total",
        "term_months": "Term (months)",
        "first_payment": "First Payment",
        "fees": "Fees",
        "net_amount": "Net Amount",
        "type": "Type",
        "status": "Status",
    },
)
LEGACY_LAYOUT = CsvLayout(
    "legacy",
    {
        "purchased_at": "Purchase Date (UTC)",
        "name": "Customer",
        "product": "Checkout",
        "type": "Type",
        "term_months": "Term",
        "order_total": "Order Total",
        "fees": "Fees",
        "net_amount": "Net Amount",
        "status": "Status",
    },
)
DEFAULT_LAYOUTS = (ORDERS_LAYOUT, LEGACY_LAYOUT)
DEFAULT_EMAIL_HEADERS = ("Email", "Student Email", "Customer Email", "Email Address")


class ElectiveFileError(ValueError):
    """An export that cannot be read: the message names the file (and line) and why."""


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str


@dataclass(frozen=True)
class DropScan:
    """The files ready to read and the ones left for later, with the reason for each."""

    ready: list[Path]
    skipped: list[SkippedFile]

    @property
    def complete(self) -> bool:
        """True when every file was taken: only then may a full sync soft-delete."""
        return not self.skipped


@dataclass(frozen=True)
class _Mapping:
    """How one file's columns map to fields."""

    layout: CsvLayout
    fields: dict[str, int]
    email: int | None
    extra: dict[str, int]
    mapped: set[int | None]


def _normalise(header: str) -> str:
    return " ".join(header.replace("\ufeff", "").split()).casefold()


@dataclass
class ElectiveReader:
    """Reads the Elective drop folder; `scan()` first, then `pages(scan)`."""

    folder: Path
    pattern: str = "*.csv"
    layouts: tuple[CsvLayout, ...] = DEFAULT_LAYOUTS
    email_headers: tuple[str, ...] = DEFAULT_EMAIL_HEADERS
    chunk_size: int = 5000
    settle_seconds: float = 30.0
    encoding: str = "utf-8-sig"

    def scan(self) -> DropScan:
        """Every matching file, sorted by name, split into ready and still-being-written."""
        if not self.folder.is_dir():
            problem = "does not exist"
            if self.folder.exists():
                kind = "a file" if self.folder.is_file() else "not a folder"
                problem = f"is {kind}: name the folder Elective's exports are dropped into"
            raise ElectiveFileError(f"Elective drop folder {self.folder} {problem}")
        ready, skipped = [], []
        for path in sorted(self.folder.glob(self.pattern)):
            if path.is_file():
                reason = self._not_ready(path)
                if reason is None:
                    ready.append(path)
                else:
                    skipped.append(SkippedFile(path, reason))
        return DropScan(ready, skipped)

    def pages(self, scan: DropScan) -> Iterator[Page]:
        for path in scan.ready:
            yield from self.read_file(path)

    def read_file(self, path: Path) -> Iterator[Page]:
        """The file's rows in chunks; ElectiveFileError names file and line on bad input."""
        before = path.stat()
        with path.open(encoding=self.encoding, newline="") as handle:
            reader = csv.reader(handle)
            try:
                yield from self._chunks(path, reader)
            except (UnicodeDecodeError, csv.Error) as exc:
                raise ElectiveFileError(
                    f"{path.name} near line {reader.line_num + 1}: unreadable ({exc}); "
                    f"expected {self.encoding} CSV"
                ) from None
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise ElectiveFileError(
                f"{path.name}: changed while it was being read; run the sync again once the "
                "export is complete"
            )

    def _chunks(self, path: Path, reader: _csv.Reader) -> Iterator[Page]:
        header = next(reader, None)
        if header is None:
            raise ElectiveFileError(f"{path.name}: the file has no header row")
        mapping = self._mapping(path, header)
        records = (self._record(path, mapping, line, row) for line, row in _numbered(reader))
        yield from chunked(records, self.chunk_size)

    def _not_ready(self, path: Path) -> str | None:
        stat = path.stat()
        age = time.time() - stat.st_mtime
        if age < self.settle_seconds:
            return f"modified {age:.0f} s ago (< {self.settle_seconds:.0f} s): may still be written"
        if stat.st_size == 0:
            return "empty: may still be written"
        with path.open("rb") as handle:
            handle.seek(-1, 2)
            if handle.read(1) not in (b"\n", b"\r"):
                return "no trailing newline: may still be written"
        return None

    def _mapping(self, path: Path, header: list[str]) -> _Mapping:
        positions: dict[str, int] = {}
        for index, cell in enumerate(header):
            key = _normalise(cell)
            if key in positions:
                raise ElectiveFileError(f"{path.name}: column {cell.strip()!r} appears twice")
            if key:
                positions[key] = index
        layout = self._layout(path, header, positions)
        fields = {name: positions[_normalise(text)] for name, text in layout.columns.items()}
        email = next(
            (positions[k] for k in map(_normalise, self.email_headers) if k in positions), None
        )
        used = {*fields.values(), email}
        extra = {header[i].strip(): i for i in positions.values() if i not in used}
        return _Mapping(layout, fields, email, extra, mapped=used | set(extra.values()))

    def _layout(self, path: Path, header: list[str], positions: dict[str, int]) -> CsvLayout:
        def missing(layout: CsvLayout) -> list[str]:
            return [text for text in layout.columns.values() if _normalise(text) not in positions]

        matching = [layout for layout in self.layouts if not missing(layout)]
        if matching:
            return max(matching, key=lambda layout: len(layout.columns))
        closest = min(self.layouts, key=lambda layout: len(missing(layout)))
        raise ElectiveFileError(
            f"{path.name}: unknown export layout; header is {[c.strip() for c in header]}; "
            f"the closest known layout {closest.name!r} lacks {missing(closest)}"
        )

    def _record(self, path: Path, mapping: _Mapping, line: int, row: list[str]) -> Record:
        def cell(index: int) -> str:
            return row[index] if index < len(row) else ""

        record: Record = {name: None for name in FIELDS}
        record.update({name: cell(index) for name, index in mapping.fields.items()})
        record["email"] = None if mapping.email is None else cell(mapping.email)
        extra = {name: cell(index) for name, index in mapping.extra.items()}
        # Cells under no header are kept, not dropped: validation can see and reject them.
        extra.update(
            {
                f"column {i + 1}": value
                for i, value in enumerate(row)
                if value and i not in mapping.mapped
            }
        )
        record["_extra"] = extra
        record.update({"_file": path.name, "_line": line, "_layout": mapping.layout.name})
        return record


def _numbered(reader: _csv.Reader) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows with the line each starts on (quoted fields may span lines)."""
    line = reader.line_num + 1
    for row in reader:
        if any(row):
            yield line, row
        line = reader.line_num + 1
