"""The registry of sources: a new source is one folder and one sources.toml entry, and
everything that concerns all sources derives from it; an incomplete source fails the load with
a message naming the source and the missing piece.

The template (templates/source/) is copied into a temporary package, as a newcomer would copy
it, and registered by an entry in a copy of sources.toml: nothing of the project is edited.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.lib.validation.types import AmountBounds, RecordRejected
from costudy_pipelines.sources.config import SourceConfigError, load_sources_config
from costudy_pipelines.sources.registry import PIECES, RegistryError, build_registry, load_registry
from costudy_pipelines_tests.harness import HANG_S
from costudy_pipelines_tests.lib.loading.records import whop_payment

TEMPLATE = PROJECT_ROOT / "templates" / "source"
SOURCES_TOML = PROJECT_ROOT / "sources.toml"


def add_template(
    tmp_path: Path,
    name: str,
    *,
    without: str | None = None,
    base: Path = SOURCES_TOML,
    edits: dict[str, str] | None = None,
) -> Path:
    """The template copied to <tmp>/<package>/<name>/ and <tmp>/sources.toml: `base` plus an
    entry for it; returns the config's path. Package names are unique: no import collides."""
    package = f"extra_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    shutil.copytree(TEMPLATE, tmp_path / package / name)
    if without is not None:
        (tmp_path / package / name / f"{without}.py").unlink()
    spec = tmp_path / package / name / "spec.py"
    for old, new in (edits or {}).items():
        spec.write_text(spec.read_text().replace(old, new))
    config = tmp_path / "sources.toml"
    entry = f'\n[sources.{name}]\nmodule = "{package}.{name}"\navailable_from = "2024-01-01"\n'
    config.write_text(base.read_text() + entry)
    return config


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_project_registry_lists_every_source_folder_with_its_feeds() -> None:
    registry = build_registry(load_sources_config(SOURCES_TOML))
    package = PROJECT_ROOT / "costudy_pipelines" / "sources"
    folders = sorted(path.parent.name for path in package.glob("*/spec.py"))
    assert sorted(source.name for source in registry) == folders
    assert all(source.feeds for source in registry)
    assert registry.name_priority()[:3] == ("ghl", "whop", "sheets")  # SPEC §3.2


@pytest.mark.parametrize("piece", PIECES)
def test_a_template_without_a_piece_fails_the_load_naming_source_and_piece(
    importable: Path, piece: str
) -> None:
    config = add_template(importable, "crm_contacts", without=piece)
    with pytest.raises(RegistryError, match=rf"crm_contacts.*{piece}\.py"):
        build_registry(load_sources_config(config))


def test_a_config_entry_without_a_folder_and_a_clash_of_ranks_fail_clearly(
    importable: Path,
) -> None:
    config = importable / "sources.toml"
    config.write_text(SOURCES_TOML.read_text() + "\n[sources.no_such_folder]\n")
    with pytest.raises(RegistryError, match=r"'no_such_folder'.*no package"):
        build_registry(load_sources_config(config))

    ranked = {"NAME_RANK = None": "NAME_RANK = 20"}  # both copies given the same rank
    add_template(importable, "crm_one", edits=ranked)
    config = add_template(importable, "crm_two", base=config, edits=ranked)
    with pytest.raises(RegistryError, match="share name-priority rank 20"):
        build_registry(load_sources_config(config))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("[sync]\nmax_delete_shares = 0.1\n", r"\[sync\]: unknown key\(s\) \['max_delete_shares"),
        ("[sync]\nmax_delete_share = 7\n", r"max_delete_share: must be a share within 0\.\.1"),
        (
            '[sources.sheets]\nworksheets = [{ name = "a", spreadsheet_key = "k", '
            'worksheet = "w", colums = {} }]\n',
            r"\[sources\.sheets\].*worksheets\[0\]: unknown key\(s\) \['colums'\]",
        ),
        (
            '[sources.sheets]\nworksheets = [{ name = "a", spreadsheet_key = "k", '
            'worksheet = "w", columns = { mail = "E-mail" } }]\n',
            r"worksheets\[0\] columns: unknown field\(s\) \['mail'\]",
        ),
        ("[sources.whop]\nbase_url = 'x'\n", r"\[sources\.whop\] has unknown keys \['base_url'\]"),
        ("[sync]\nmax_amount = -5\n", r"\[sync\] max_amount: must be within 0 < x <= 1e15"),
        ("[sync]\nmax_amount_decimals = 40\n", r"max_amount_decimals: must be an integer within"),
    ],
)
def test_sources_toml_is_read_strictly_naming_file_entry_and_key(
    tmp_path: Path, entry: str, message: str
) -> None:
    """Every other entry as in the project's file, one entry replaced by a broken one."""
    table = entry.split("\n", 1)[0]
    blocks = SOURCES_TOML.read_text().split("\n[")
    kept = [block for block in blocks if not block.startswith(table[1:])]
    config = tmp_path / "sources.toml"
    config.write_text("\n[".join(kept) + "\n" + entry)
    with pytest.raises(SourceConfigError, match=message) as raised:
        build_registry(load_sources_config(config))
    assert str(config) in str(raised.value)


def test_amount_bounds_in_sources_toml_reach_every_feeds_validator(tmp_path: Path) -> None:
    """[sync] max_amount / max_amount_decimals bound what every source's records may carry."""
    config = tmp_path / "sources.toml"
    config.write_text(
        SOURCES_TOML.read_text()
        .replace("max_amount = 1_000_000_000_000", "max_amount = 1000")
        .replace("max_amount_decimals = 8", "max_amount_decimals = 2")
    )
    bounded, default = build_registry(load_sources_config(config)), load_registry()
    over = whop_payment("pay_1", "a@example.com", amount=1000.01)
    assert default.feed("whop_payments").load.validator(over).values
    with pytest.raises(RecordRejected, match="total"):
        bounded.feed("whop_payments").load.validator(over)
    bounds = {feed.load.validator.amount_bounds for _, feed in bounded.feeds()}  # type: ignore[attr-defined]
    assert bounds == {AmountBounds(max_magnitude=Decimal(1000), max_decimals=2)}


def test_a_source_folder_without_an_entry_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "sources.toml"
    config.write_text(SOURCES_TOML.read_text().replace("[sources.elective]", "[sources.nothing]"))
    with pytest.raises(RegistryError, match=r"no \[sources.<name>\] entry.*'elective'"):
        build_registry(load_sources_config(config))


PROBE = textwrap.dedent(
    """
    import json, os
    import dagster as dg
    from costudy_pipelines.definitions import project_definitions
    from costudy_pipelines.sandbox import stack
    from costudy_pipelines.sandbox.world import World, WorldConfig
    from costudy_pipelines.sources.registry import load_registry

    name = os.environ["PROBE_SOURCE"]
    defs = project_definitions()
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey(name))
    registry = load_registry()
    emulator = registry.source(name).emulator()
    server = emulator.server(World(WorldConfig(people=40, days=5)), 0, "probe-token").start()
    try:
        from costudy_pipelines.lib.clients.base import TimeWindow
        settings = {"base_url": server.base_url, "token": "probe-token"}
        reader = registry.source(name).open_reader(settings, name)
        try:
            day = TimeWindow(TimeWindow.day("2024-01-01").start, TimeWindow.day("2024-01-06").end)
            served = sum(len(page) for page in reader.day(day))
            reported = reader.reported(day)
        finally:
            reader.close()
    finally:
        server.stop()
    print(json.dumps({
        "checks": sorted(k.name for k in graph.asset_check_keys if k.asset_key == node.key),
        "freshness_fail_s": node.freshness_policy.fail_window.to_timedelta().total_seconds(),
        "owners": list(node.owners),
        "partitioned": node.partitions_def is not None,
        "users_deps": node.key in graph.get(dg.AssetKey("users")).parent_keys,
        "sync_log_names": registry.sync_log_names(),
        "priority": list(registry.name_priority()),
        "ranked": [s.name for s in registry if s.source.name_rank is not None],
        "services": stack.services(),
        "resource_variables": sorted(
            value.env_var_name for value in defs.resources[name].settings.values()
        ),
        "served": served,
        "reported": reported,
    }))
    """
)


def test_a_copied_template_appears_everywhere_that_derives_from_the_registry(
    tmp_path: Path,
) -> None:
    """Definitions (asset, checks, freshness, owners, users' inputs), sync health, name
    priority and the sandbox's server; its client reads its emulator."""
    config = add_template(tmp_path, "crm_contacts")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT_ROOT)]),
        "COSTUDY_SOURCES_CONFIG": str(config),
        "PROBE_SOURCE": "crm_contacts",
    }
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=HANG_S
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["checks"] == ["counts_match_source", "integrity", "reject_rate", "run_accounting"]
    assert found["freshness_fail_s"] == 30 * 3600
    assert found["owners"] == ["team:data-platform"]
    assert found["partitioned"] and found["users_deps"]
    assert "crm_contacts" in found["sync_log_names"]
    # unranked (the template's None): after every source that has a rank
    after = found["priority"][len(found["ranked"]) :]
    assert "crm_contacts" in after and set(found["ranked"]).isdisjoint(after)
    assert "crm_contacts" in found["services"]
    assert found["served"] > 0 and found["reported"] == found["served"]
    # the resource the generic builder made reads the variables spec.py names, by name
    assert found["resource_variables"] == ["CRM_CONTACTS_API_URL", "CRM_CONTACTS_TOKEN"]
