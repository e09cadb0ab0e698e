"""The one Definitions: what every registered source carries (derived from the registry, never
a count kept by hand), and a snapshot of everything else defined, so that an accidental change
to an asset key, group, check, job, schedule or sensor shows up as a diff in review. The
registered sources' own assets, checks and resources are left to the first test: adding a
source changes its folder, sources.toml and a migration, not the snapshot.

After an intended change: `COSTUDY_UPDATE_SNAPSHOT=1 .venv/bin/pytest
costudy_pipelines_tests/test_definitions.py` rewrites the snapshot; commit it with the change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from costudy_pipelines.definitions import project_definitions, source_definitions
from costudy_pipelines.sources.registry import NoCount, load_registry

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")
FEED_CHECKS = {"integrity", "run_accounting", "reject_rate"}


def test_every_registered_feed_carries_its_checks_freshness_owners_and_health_row() -> None:
    graph = project_definitions().resolve_asset_graph()
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    users_inputs = graph.get(dg.AssetKey("users")).parent_keys
    registry = load_registry()
    for source, feed in registry.feeds():
        node = graph.get(dg.AssetKey(feed.asset))
        mine = {name for asset, name in checks if asset == feed.asset}
        counted = not isinstance(feed.counts, NoCount)
        assert mine >= FEED_CHECKS, feed.asset  # others may add theirs (platform's agreement)
        assert ("counts_match_source" in mine) == counted, feed.asset
        assert node.freshness_policy is not None, feed.asset
        assert node.owners == list(source.source.owners), feed.asset
        assert node.group_name == "sources", feed.asset
        assert node.key in users_inputs, feed.asset
        assert feed.load.name in registry.sync_log_names(), feed.asset
        # its code references: the declaration (the source folder's spec.py) first
        references = node.metadata["dagster/code_references"].code_references
        assert references[0].file_path.endswith(f"{source.name}/spec.py"), feed.asset


def snapshot() -> dict[str, object]:
    defs = project_definitions()
    graph = defs.resolve_asset_graph()
    repository = defs.get_repository_def()
    registry = load_registry()
    feeds = {feed.asset for _, feed in registry.feeds()}
    sources_own = {key for built in source_definitions(registry) for key in (built.resources or {})}

    def deps(key: dg.AssetKey) -> list[str]:
        """Its inputs; an asset fed by every feed (users, sync_runs) says so, whatever they are."""
        parents = {parent.to_user_string() for parent in graph.get(key).parent_keys}
        if parents >= feeds:
            return [*sorted(parents - feeds), "<every registered feed>"]
        return sorted(parents)

    return {
        "assets": {
            key.to_user_string(): {
                "group": graph.get(key).group_name,
                "partitioned": graph.get(key).partitions_def is not None,
                "deps": deps(key),
            }
            for key in sorted(graph.get_all_asset_keys())
            if key.to_user_string() not in feeds
        },
        "checks": sorted(
            f"{key.asset_key.to_user_string()}:{key.name}"
            for key in graph.asset_check_keys
            if key.asset_key.to_user_string() not in feeds
        ),
        "jobs": sorted(job.name for job in repository.get_all_jobs()),
        "schedules": sorted(schedule.name for schedule in repository.schedule_defs),
        "sensors": sorted(sensor.name for sensor in repository.sensor_defs),
        "resources": sorted(set(repository.get_top_level_resources()) - sources_own),
    }


def test_the_definitions_match_their_snapshot() -> None:
    found = snapshot()
    if os.environ.get("COSTUDY_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    assert found == json.loads(SNAPSHOT.read_text()), (
        "the definitions changed: if intended, rerun with COSTUDY_UPDATE_SNAPSHOT=1 and commit "
        f"{SNAPSHOT.name}"
    )
