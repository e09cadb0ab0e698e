"""Put a sandbox world into a real warehouse the way the syncs do, without servers: the
website, course and platform databases seeded from the world and read by the sources'
extractors, the API sources' records as their clients return them, every worksheet and the
Elective rows, each through the load engine (sync_session) with the registered load specs.
(The course platform's MongoDB analytics are left out: they add no person a course order or
enrollment does not.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from costudy_pipelines.lib import pg
from costudy_pipelines.lib.loading import sync_session
from costudy_pipelines.lib.people.matching import MatchCandidate
from costudy_pipelines.sandbox.ground_truth import ground_truth
from costudy_pipelines.sandbox.seed import seed_course, seed_platform_users, seed_website
from costudy_pipelines.sandbox.world import World
from costudy_pipelines.sources.elective.spec import elective_rows
from costudy_pipelines.sources.registry import load_registry
from costudy_pipelines_tests.defs.finance.loading import database_rows, sheet_specs
from costudy_pipelines_tests.registered import registered

API_SOURCES = ("whop", "ghl")
DATABASE_SOURCES = {"website": "WEBSITE_DB_URL", "course": "COURSE_DB_URL",
                    "platform": "PLATFORM_DB_URL"}  # fmt: skip


def sync_world(
    world: World, warehouse: str, *, platform: str, new_database: Callable[[], str]
) -> None:
    """Every people source of the world into `warehouse`; `platform` holds the platform's
    schema, `new_database` makes the empty website and course databases."""
    databases = {"website": new_database(), "course": new_database(), "platform": platform}
    seed_website(databases["website"], world)
    seed_course(databases["course"], world)
    seed_platform_users(databases["platform"], world)
    registry = load_registry()
    for source, feed in registry.feeds():
        if source.name in API_SOURCES:
            sync_session(warehouse, feed.load, world.records(feed.asset))
        elif source.name in DATABASE_SOURCES and source.source.database is not None:
            extract = source.source.database.extracts[feed.asset]
            rows = database_rows(databases[source.name], extract, DATABASE_SOURCES[source.name])
            sync_session(warehouse, feed.load, rows, full=True)
    for spec, rows in sheet_specs(world).values():
        sync_session(warehouse, spec, rows, full=True)
    elective = (record["values"] for record in world.records("elective_rows"))
    sync_session(warehouse, registered(elective_rows()), elective, full=True)


@dataclass(frozen=True)
class Measured:
    true_pairs: int
    candidates: int
    true_candidates: int

    @property
    def precision(self) -> float:
        return self.true_candidates / self.candidates if self.candidates else 1.0

    @property
    def recall(self) -> float:
        return self.true_candidates / self.true_pairs if self.true_pairs else 1.0


def user_emails(conn: psycopg.Connection) -> dict[str, str]:
    """users.id (as text) -> email."""
    return {str(user_id): email for user_id, email in conn.execute("select id, email from users")}


def measure(world: World, warehouse: str, candidates: list[MatchCandidate]) -> Measured:
    """Candidates against the world's same-person pairs among the users the sync created."""
    with pg.connect(warehouse, source="warehouse") as conn:
        emails = user_emails(conn)
    truth = ground_truth(world).same_person_pairs(emails.values())
    found = {tuple(sorted((emails[str(c.user_a)], emails[str(c.user_b)]))) for c in candidates}
    return Measured(len(truth), len(found), len(found & truth))
