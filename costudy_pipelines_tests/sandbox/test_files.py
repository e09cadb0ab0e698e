"""Dumps and Elective exports hold exactly the world's records."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from costudy_pipelines.sandbox.dump import dump_world
from costudy_pipelines.sandbox.elective_files import read_elective_export, write_elective_exports
from costudy_pipelines.sandbox.generators import API_SOURCES
from costudy_pipelines.sandbox.generators.elective import LAYOUTS
from costudy_pipelines.sandbox.spreadsheets import spreadsheets
from costudy_pipelines.sandbox.world import World, WorldConfig


def test_api_and_sheet_dumps_round_trip(tmp_path: Path) -> None:
    world = World(WorldConfig(seed=8, people=600, delete_rate=0.05))
    world.advance_day()
    manifest = dump_world(world, tmp_path)
    for source in API_SOURCES:
        lines = (tmp_path / "api" / f"{source}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == list(world.records(source)), source
        assert manifest["records"][source] == world.live_count(source)
    listing = json.loads((tmp_path / "sheets" / "spreadsheets.json").read_text())
    books = spreadsheets(world)
    assert {book["spreadsheet_id"] for book in listing} == set(books)
    for book in listing:
        for tab in book["worksheets"]:
            path = tmp_path / "sheets" / book["spreadsheet_id"] / f"{tab['index']}.csv"
            with path.open(encoding="utf-8", newline="") as handle:
                rows = list(csv.reader(handle))
            assert rows == books[book["spreadsheet_id"]]["worksheets"][tab["title"]]
    assert manifest["fingerprint"] == world.fingerprint()
    assert manifest["records"]["sheet_rows"] == world.live_count("sheet_rows")


def test_elective_exports_hold_every_order_in_its_layout(tmp_path: Path) -> None:
    world = World(WorldConfig(seed=9, people=800))
    world.advance_day()
    counts = write_elective_exports(world, tmp_path)
    expected: dict[str, list[list[str]]] = {layout.file_name: [] for layout in LAYOUTS}
    for record in world.records("elective_rows"):
        layout = next(layout for layout in LAYOUTS if layout.name == record["layout"])
        expected[layout.file_name].append([record["values"][c] for c in layout.header])
    for layout in LAYOUTS:
        header, rows = read_elective_export(tmp_path / layout.file_name)
        assert header == list(layout.header)
        assert rows == expected[layout.file_name]
        assert counts[layout.file_name] == len(rows) > 0
    no_email, _ = read_elective_export(tmp_path / "elective_orders_no_email.csv")
    assert not [column for column in no_email if "mail" in column.lower()]
    legacy, _ = read_elective_export(tmp_path / "elective_orders_legacy.csv")
    assert legacy[:3] == ["Purchase Date (UTC)", "Customer", "Customer Email"]
