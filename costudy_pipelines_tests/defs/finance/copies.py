"""A small sandbox world loaded once per test session into a warehouse, a platform and a course
database; every test works on its own copies (CREATE DATABASE ... TEMPLATE)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import make_url

from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.migrations import apply_pending, discover
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sandbox.world import WorldConfig
from costudy_pipelines_tests.harness import DatabaseFactory

WORLD = WorldConfig(seed=5, people=300, days=20)


@dataclass(frozen=True)
class Databases:
    warehouse: str
    platform: str
    course: str


RESOURCE_VARIABLES = {
    "warehouse": ("warehouse_db", "WAREHOUSE_DB_URL"),
    "platform": ("platform_db", "PLATFORM_DB_URL"),
    "course": ("course_db", "COURSE_DB_URL"),
}


class Copies:
    """A test's own copies of the loaded databases, each made when the test (or a run that
    requires its resource) first asks for it: copying a database costs a second or two."""

    def __init__(self, factory: DatabaseFactory, loaded: Databases) -> None:
        self._factory = factory
        self._loaded = loaded
        self._urls: dict[str, str] = {}

    def _copy(self, name: str) -> str:
        if name not in self._urls:
            self._urls[name] = self._factory.create(template=getattr(self._loaded, name))
        return self._urls[name]

    @property
    def warehouse(self) -> str:
        return self._copy("warehouse")

    @property
    def platform(self) -> str:
        return self._copy("platform")

    @property
    def course(self) -> str:
        return self._copy("course")

    def resources(self, required: set[str]) -> dict[str, PostgresResource]:
        """The resources of the `required` keys, each on this test's copy."""
        return {
            key: PostgresResource(url=self._copy(name), env_var=variable)
            for name, (key, variable) in RESOURCE_VARIABLES.items()
            if key in required
        }


def schema_template(factory: DatabaseFactory, database: str) -> str:
    """A template holding sql/<database> applied by the migration runner (built once)."""
    folder = PROJECT_ROOT / "sql" / database
    fingerprint = discover(folder, database=database).fingerprint()
    prefix = "tpl_wh" if database == "warehouse" else f"tpl_{database}"
    return factory.template(f"{prefix}_{fingerprint}", lambda url: apply_pending(url, folder))


def database_name(url: str) -> str:
    return make_url(url).database
