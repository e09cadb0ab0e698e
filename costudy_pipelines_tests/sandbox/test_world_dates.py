"""The demo's and the sandbox's world end yesterday (UTC) unless told otherwise, its content does
not depend on its dates, and the daily partitions start where the sandbox's world starts."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from costudy_pipelines.commands.sandbox import build_world
from costudy_pipelines.defs._source_assets import daily_partitions
from costudy_pipelines.sandbox import stack
from costudy_pipelines.sandbox.world import World, WorldConfig, start_for
from costudy_pipelines.sources.config import PARTITIONS_START_VAR
from costudy_pipelines.sources.registry import load_registry

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def world_options(**given: object) -> dict[str, object]:
    options: dict[str, object] = {
        "seed": 1,
        "people": 20,
        "records": None,
        "start": None,
        "end": None,
        "days": 3,
        "money_format": "money",
        "advance_days": 0,
    }
    return options | given


def test_by_default_the_world_ends_yesterday_utc() -> None:
    before = datetime.now(UTC).date() - timedelta(days=1)
    config = build_world(**world_options(days=30)).config  # type: ignore[arg-type]
    after = datetime.now(UTC).date() - timedelta(days=1)
    last_day = config.start + timedelta(days=config.days - 1)
    assert last_day in {before, after}  # midnight may pass between the two readings
    assert World(config).end_date == last_day


def test_an_explicit_end_or_start_pins_the_dates() -> None:
    ended = build_world(**world_options(end="2024-01-03")).config  # type: ignore[arg-type]
    assert ended.start == date(2024, 1, 1)
    started = build_world(**world_options(start="2024-01-01")).config  # type: ignore[arg-type]
    assert started.start == date(2024, 1, 1)
    assert start_for(90, date(2024, 3, 30)) == date(2024, 1, 1)


def shifted(text: str, delta: timedelta) -> str:
    def day(match: re.Match[str]) -> str:
        try:
            return (date.fromisoformat(match.group()) + delta).isoformat()
        except ValueError:  # the world's malformed dates stay as they are
            return match.group()

    return ISO_DAY.sub(day, text)


def test_worlds_of_other_dates_hold_the_same_content_every_date_shifted() -> None:
    january = World(WorldConfig(people=60, days=5, start=date(2024, 1, 1)))
    recent = World(WorldConfig(people=60, days=5, start=date(2026, 11, 7)))
    delta = date(2026, 11, 7) - date(2024, 1, 1)
    for world in (january, recent):
        world.advance_day()  # the changes of an advanced day shift too
    compared = 0
    for source in january.tables:
        old = [shifted(str(record), delta) for record in january.records(source)]
        new = [str(record) for record in recent.records(source)]
        assert old == new, source
        compared += len(new)
    assert compared > 100
    # and the dates did move: the recent world has no record dated in January 2024
    assert not any("2024-01-0" in str(r) for s in recent.tables for r in recent.records(s))


def test_the_partitions_start_where_the_sandbox_world_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = stack.SandboxState(
        world=WorldConfig(days=30, start=date(2026, 11, 7)).to_dict(),
        ports=dict.fromkeys(("platform", "alerts"), 1),
        tokens={"platform": "t"},
    )
    environment = stack.sandbox_environment(state)
    assert environment[PARTITIONS_START_VAR] == "2026-11-07"

    assert daily_partitions(load_registry().config).start.date() == date(2024, 1, 1)  # sources.toml
    monkeypatch.setenv(PARTITIONS_START_VAR, environment[PARTITIONS_START_VAR])
    partitions = daily_partitions(load_registry().config)
    assert partitions.start.date() == date(2026, 11, 7)
    assert partitions.get_first_partition_key() == "2026-11-07"

    monkeypatch.setenv(PARTITIONS_START_VAR, "2026-13-01")
    with pytest.raises(ValueError, match=PARTITIONS_START_VAR):
        load_registry()
