"""The world's sheet rows laid out as Google Sheets holds them: spreadsheets with worksheets,
a header row, then data rows as the values API returns them (strings, trailing empty cells
trimmed, trailing empty rows trimmed). A deleted row is usually removed (rows below move up);
some are cleared instead and stay as an empty row (`[]`) in the middle, as people leave them.
Blank rows are not records: a sync skips them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from costudy_pipelines.sandbox.draw import Draw
from costudy_pipelines.sandbox.generators.sheets import SPREADSHEETS, place, ragged, spreadsheet_id
from costudy_pipelines.sandbox.world import World

SOURCE = "sheet_rows"
CLEARED_SHARE = 0.3  # of deleted rows, the ones left behind as an empty row


@dataclass(frozen=True)
class WorksheetMeta:
    sheet_id: int  # the numeric gid
    index: int
    title: str
    header: tuple[str, ...]
    roles: dict[str, str]  # email/name/amount/currency/date -> column title


@dataclass(frozen=True)
class SpreadsheetMeta:
    spreadsheet_id: str
    title: str
    worksheets: tuple[WorksheetMeta, ...]


def spreadsheet_metas(world: World) -> list[SpreadsheetMeta]:
    metas = []
    for sheet in SPREADSHEETS:
        sid = spreadsheet_id(world.seed, sheet)
        tabs = tuple(
            WorksheetMeta(
                0 if number == 0 else Draw(world.seed, "gid", sid, number).below(2**31 - 1),
                number,
                tab.title,
                tab.header,
                dict(tab.roles),
            )
            for number, tab in enumerate(sheet.worksheets)
        )
        metas.append(SpreadsheetMeta(sid, sheet.title, tabs))
    return metas


def data_rows(world: World) -> Iterator[tuple[str, str, list[str]]]:
    """(spreadsheet id, worksheet title, row) for every data row in sheet order, cleared rows
    as `[]` (trailing ones included: `worksheet_values` trims them)."""
    table = world.person_table(SOURCE)
    deleted = table.overlay.deleted
    for index, person_index, ordinal in table.walk():
        if index in deleted:
            if Draw(world.seed, "cleared", index).chance(CLEARED_SHARE):
                content = world.content_ordinal(SOURCE, index, ordinal)
                sheet, tab = place(world.seed, person_index, content)
                yield spreadsheet_id(world.seed, sheet), tab.title, []
            continue
        found = world.entry(SOURCE, index)
        assert found is not None  # only deleted records have no entry
        yield found.record["spreadsheet_id"], found.record["worksheet"], ragged(found.record)


def spreadsheets(world: World) -> dict[str, dict[str, object]]:
    """Every spreadsheet by id: {"title", "worksheets": {title: values}} with `values` exactly
    as `GET /v4/spreadsheets/{id}/values/{title}` returns it (header row first)."""
    result: dict[str, dict[str, object]] = {}
    tabs: dict[tuple[str, str], list[list[str]]] = {}
    for meta in spreadsheet_metas(world):
        worksheets = {}
        for tab in meta.worksheets:
            worksheets[tab.title] = tabs[meta.spreadsheet_id, tab.title] = [list(tab.header)]
        result[meta.spreadsheet_id] = {"title": meta.title, "worksheets": worksheets}
    for sid, title, row in data_rows(world):
        tabs[sid, title].append(row)
    for values in tabs.values():
        while values and not values[-1]:
            values.pop()
    return result
