"""A running sandbox (every emulated system, seeded databases) and a migrated warehouse, with
the environment variables the product's resources read pointing at them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import pytest

from costudy_pipelines.defs._api_sources import ApiConnection
from costudy_pipelines.sandbox import stack
from costudy_pipelines.sandbox.changes import ChangeReport
from costudy_pipelines.sandbox.world import World, WorldConfig

WORLD = WorldConfig(seed=1, people=400, days=3)


SOURCE_DATABASES = ("WEBSITE_DB_URL", "COURSE_DB_URL", "PLATFORM_DB_URL")


@dataclass
class Sandbox:
    config: WorldConfig
    state: stack.SandboxState
    database_urls: dict[str, str]
    warehouse_url: str
    days_advanced: int = 0

    @property
    def first_day(self) -> date:
        return self.config.start

    @property
    def last_day(self) -> date:
        return self.config.start + timedelta(days=self.config.days + self.days_advanced - 1)

    def world(self) -> World:
        """The world as the sandbox serves it now (same config, same days advanced)."""
        world = World(self.config)
        for _ in range(self.days_advanced):
            world.advance_day()
        return world

    def advance_day(self, monkeypatch: pytest.MonkeyPatch) -> ChangeReport:
        report = stack.advance_day(database_urls=self.database_urls)
        self.days_advanced += 1
        self.state = stack.read_state()  # the servers restarted (same ports, same tokens)
        set_environment(monkeypatch, stack.sandbox_environment(self.state))
        return report

    def base_url(self, service: str) -> str:
        return self.state.base_url(service)


def set_environment(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def impatient_whop(retry_attempts: int) -> ApiConnection:
    """Whop's connection as the project makes it (its variables), retrying only that often,
    briefly: a fault past the cap fails the run soon."""
    return ApiConnection(
        settings={
            "api_key": dg.EnvVar("WHOP_API_KEY"),
            "base_url": dg.EnvVar("WHOP_API_URL"),
            "retry_attempts": str(retry_attempts),
            "retry_backoff_s": "0.05",
        }
    )
