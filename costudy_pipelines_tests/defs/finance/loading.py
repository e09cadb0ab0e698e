"""Put a sandbox world into real databases the way the syncs do: the course and platform
databases seeded from the world, then every revenue source and the platform users loaded
into the warehouse through the load engine (sync_session). Course orders go one day
partition at a time (sync_log then names the days the count check compares), platform users
as one full sync (every day compared)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.clients.databases import extract_pages
from costudy_pipelines.lib.loading import LoadSpec, sync_session
from costudy_pipelines.sandbox.generators.sheets import worksheet
from costudy_pipelines.sandbox.seed import seed_course, seed_platform_users
from costudy_pipelines.sandbox.world import World
from costudy_pipelines.sources.course.client import COURSE_ORDERS
from costudy_pipelines.sources.course.spec import course_orders as spec_course_orders
from costudy_pipelines.sources.elective.spec import elective_rows as spec_elective_rows
from costudy_pipelines.sources.platform.client import PLATFORM_USERS
from costudy_pipelines.sources.platform.spec import platform_users as spec_platform_users
from costudy_pipelines.sources.sheets.records import SheetColumns
from costudy_pipelines.sources.sheets.spec import sheet_rows as spec_sheet_rows
from costudy_pipelines.sources.whop.spec import whop_payments as spec_whop_payments
from costudy_pipelines_tests.registered import registered


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def sheet_specs(world: World) -> dict[tuple[str, str], tuple[LoadSpec, list[dict]]]:
    """One sheet_rows spec per worksheet (columns from the worksheet's roles) and its rows,
    each its own feed (world_sheet_1, ...): this world's sheets are not sources.toml's."""
    found: dict[tuple[str, str], tuple[LoadSpec, list[dict]]] = {}
    for record in world.records("sheet_rows"):
        place = (record["spreadsheet_id"], record["worksheet"])
        if place not in found:
            roles = worksheet(record).roles
            columns = SheetColumns(
                email=roles["email"], name=roles["name"], amount=roles["amount"], date=roles["date"]
            )
            feed = f"world_sheet_{len(found) + 1}"
            found[place] = (registered(spec_sheet_rows(*place, columns, feed=feed)), [])
        found[place][1].append(record["values"])
    return found


def by_created_day(rows: Iterable[dict], column: str = "created_at") -> dict[str, list[dict]]:
    days: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        days[day_of(row[column])].append(row)
    return days


def database_rows(url: str, extract, env_var: str) -> Iterator[dict]:
    engine = pg.make_engine(url, source=env_var)
    try:
        for page in extract_pages(engine, extract):
            yield from page
    finally:
        engine.dispose()


def load_by_day(warehouse: str, spec: LoadSpec, rows: Iterable[dict]) -> list[str]:
    """One partitioned session per created day, as a daily-partitioned sync runs them."""
    days = by_created_day(rows)
    for day in sorted(days):
        sync_session(warehouse, spec, days[day], partition=day)
    return sorted(days)


def whop_payments_by_day(world: World) -> dict[str, list[dict]]:
    """Whop payments grouped by the day the API lists them under (their true creation time,
    whatever a malformed record says)."""
    days: dict[str, list[dict]] = defaultdict(list)
    for entry in world.entries("whop_payments"):
        days[day_of(world.created_at("whop_payments", entry.index))].append(entry.record)
    return days


def load_world(world: World, *, warehouse: str, platform: str, course: str) -> None:
    """Seed the course and platform databases (schemas in place), then load the warehouse."""
    seed_course(course, world)
    seed_platform_users(platform, world)
    sync_session(warehouse, registered(spec_whop_payments()), world.records("whop_payments"))
    for spec, rows in sheet_specs(world).values():
        sync_session(warehouse, spec, rows, full=True)
    elective = (record["values"] for record in world.records("elective_rows"))
    sync_session(warehouse, registered(spec_elective_rows()), elective, full=True)
    orders = database_rows(course, COURSE_ORDERS, "COURSE_DB_URL")
    load_by_day(warehouse, registered(spec_course_orders()), orders)
    people = database_rows(platform, PLATFORM_USERS, "PLATFORM_DB_URL")
    sync_session(warehouse, registered(spec_platform_users()), people, full=True)
