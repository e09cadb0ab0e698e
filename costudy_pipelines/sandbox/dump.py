"""Write a world to a folder, streaming (a 1,000,000-record world never sits in memory):

api/<source>.jsonl          Whop users/memberships/payments, GoHighLevel contacts: one
                            record per line exactly as the API returns it
api/whop_members.jsonl      Whop's member records, where memberships' and users' addresses are
sheets/spreadsheets.json    spreadsheet ids, titles, worksheets (gid, header, column roles)
sheets/<id>/<n>.csv         worksheet n's values (header first, ragged rows, blank rows kept)
elective/*.csv              the Elective exports (see elective_files)
website/<table>.csv         database rows in PostgreSQL's CSV dialect (COPY ... CSV HEADER
course/<table>.csv          loads them: an unquoted empty field is NULL, "" is empty text)
platform/users.csv
manifest.json               config, day, fingerprint, records per source
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

from costudy_pipelines.sandbox.elective_files import write_elective_exports
from costudy_pipelines.sandbox.generators import API_SOURCES, COURSE_TABLES, WEBSITE_TABLES
from costudy_pipelines.sandbox.generators.course import COLUMNS as COURSE_COLUMNS
from costudy_pipelines.sandbox.generators.platform import COLUMNS as PLATFORM_COLUMNS
from costudy_pipelines.sandbox.generators.website import COLUMNS as WEBSITE_COLUMNS
from costudy_pipelines.sandbox.generators.whop import members
from costudy_pipelines.sandbox.spreadsheets import data_rows, spreadsheet_metas
from costudy_pipelines.sandbox.world import World

DB_TABLES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    *(("website", table, table, WEBSITE_COLUMNS[table]) for table in WEBSITE_TABLES),
    *(("course", table, table, COURSE_COLUMNS[table]) for table in COURSE_TABLES),
    ("platform", "platform_users", "users", PLATFORM_COLUMNS),
)  # (folder, source, file/table name, columns)


def dump_world(world: World, folder: Path, *, fingerprint: bool = True) -> dict[str, Any]:
    """Write every source under `folder`; returns (and writes) the manifest. The fingerprint
    is one more pass over the world: benchmarks that time the writing alone can skip it."""
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for source in API_SOURCES:
        counts[source] = write_jsonl(world.records(source), folder / "api" / f"{source}.jsonl")
    counts["whop_members"] = write_jsonl(members(world), folder / "api" / "whop_members.jsonl")
    counts["sheet_rows"] = write_sheets(world, folder / "sheets")
    counts["elective_rows"] = sum(write_elective_exports(world, folder / "elective").values())
    for database, source, name, columns in DB_TABLES:
        path = folder / database / f"{name}.csv"
        counts[source] = write_pg_csv(world.records(source), columns, path)
    manifest = {
        "config": world.config.to_dict(),
        "day": world.day,
        "end_date": world.end_date.isoformat(),
        "fingerprint": world.fingerprint() if fingerprint else None,
        "records": counts,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest


def write_jsonl(records: Iterable[dict[str, Any]], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False))
            handle.write("\n")
            count += 1
    return count


def write_sheets(world: World, folder: Path) -> int:
    """One CSV per worksheet plus spreadsheets.json; returns the data rows written (cleared
    rows in the middle are written as blank lines but are not records)."""
    metas = spreadsheet_metas(world)
    folder.mkdir(parents=True, exist_ok=True)
    listing = [asdict(meta) for meta in metas]
    (folder / "spreadsheets.json").write_text(json.dumps(listing, indent=2, ensure_ascii=False))
    written = 0
    with ExitStack() as stack:
        writers = {}
        for meta in metas:
            (folder / meta.spreadsheet_id).mkdir(exist_ok=True)
            for tab in meta.worksheets:
                path = folder / meta.spreadsheet_id / f"{tab.index}.csv"
                handle = stack.enter_context(path.open("w", encoding="utf-8", newline=""))
                writers[meta.spreadsheet_id, tab.title] = csv.writer(handle)
                writers[meta.spreadsheet_id, tab.title].writerow(tab.header)
        blanks: dict[tuple[str, str], int] = {}  # held back: trailing blank rows are trimmed
        for sid, title, row in data_rows(world):
            if not row:
                blanks[sid, title] = blanks.get((sid, title), 0) + 1
                continue
            writers[sid, title].writerows([[]] * blanks.pop((sid, title), 0) + [row])
            written += 1
    return written


def pg_csv_field(value: object) -> str:
    """PostgreSQL CSV: NULL is an unquoted empty field, text is always quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return '"' + text.replace('"', '""') + '"'


def write_pg_csv(records: Iterable[dict[str, Any]], columns: tuple[str, ...], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(columns) + "\n")
        for record in records:
            handle.write(",".join(pg_csv_field(record[column]) for column in columns))
            handle.write("\n")
            count += 1
    return count
