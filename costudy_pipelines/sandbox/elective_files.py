"""Elective's CSV exports in a drop folder: one file per export layout, each a full snapshot
of the orders in that layout (header row, then rows in purchase order), UTF-8, RFC 4180
quoting (names and products carry quotes, commas, newlines and emoji)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from costudy_pipelines.sandbox.generators.elective import LAYOUTS, Layout
from costudy_pipelines.sandbox.world import World

SOURCE = "elective_rows"


def export_rows(world: World) -> Iterator[tuple[Layout, list[str]]]:
    """(layout, cells in header order) for every live order row."""
    by_name = {layout.name: layout for layout in LAYOUTS}
    for record in world.records(SOURCE):
        layout = by_name[record["layout"]]
        yield layout, [record["values"][column] for column in layout.header]


def write_elective_exports(world: World, folder: Path) -> dict[str, int]:
    """Write (replace) every export file in `folder`; returns data rows per file name."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {layout.file_name: 0 for layout in LAYOUTS}
    with ExitStack() as stack:
        writers = {}
        for layout in LAYOUTS:
            handle = stack.enter_context(
                (folder / layout.file_name).open("w", encoding="utf-8", newline="")
            )
            writers[layout.name] = csv.writer(handle)
            writers[layout.name].writerow(layout.header)
        for layout, cells in export_rows(world):
            writers[layout.name].writerow(cells)
            counts[layout.file_name] += 1
    return counts


def read_elective_export(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of an export file, as a reader of the drop folder sees it."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]
