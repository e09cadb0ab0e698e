"""benchmarks/load_path.py on a small world, both modes: every registered source is read, from
the dumped files and from the sandbox servers, and both reads agree on what each holds. A new
source without a reader in the benchmark fails here (the benchmark refuses to start), not
months later when someone runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines.sources.registry import load_registry
from costudy_pipelines_tests.harness import HANG_S

SCRIPT = PROJECT_ROOT / "benchmarks" / "load_path.py"
RECORDS = 600  # a world of ~800 source records: every source has some


def expected_jobs() -> set[str]:
    """What the benchmark must report per mode and stage: every feed of the registry, the
    sheets as the one job over the world's worksheets."""
    return {
        "sheet_rows" if source.name == "sheets" else feed.asset
        for source, feed in load_registry().feeds()
    }


@pytest.mark.slow
def test_every_registered_source_runs_in_both_modes(pg_server_url: str, tmp_path: Path) -> None:
    env = os.environ | {"COSTUDY_HOME": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            f"--records={RECORDS}",
            "--baseline-records=0",
            "--modes=files,servers",
            "--stages=full,one_percent_changed_resync",
            f"--server-url={pg_server_url}",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=HANG_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines: list[dict[str, Any]] = [json.loads(line) for line in done.stdout.splitlines()]
    per_source = [line for line in lines if line.get("source") not in (None, "all")]
    wanted = expected_jobs()
    assert "course_activity" in wanted
    for mode in ("files", "servers"):
        for stage in ("full", "one_percent_changed_resync"):
            ran = {j["source"] for j in per_source if j["mode"] == mode and j["stage"] == stage}
            assert ran == wanted, (mode, stage)
    full = {(j["mode"], j["source"]): j for j in per_source if j["stage"] == "full"}
    for source in wanted:
        files, servers = full["files", source], full["servers", source]
        assert files["records"] > 0, source
        # the same world read two ways: the same records, stored and rejected alike
        assert (files["records"], files["rows_written"], files["rejected"]) == (
            servers["records"],
            servers["rows_written"],
            servers["rejected"],
        ), source
        assert servers["sessions"] >= files["sessions"], source
    summary = lines[-1]
    assert summary["stage"] == "summary"
    assert "servers_to_files" in summary


def test_the_benchmark_reads_every_registered_source() -> None:
    """The check the benchmark makes before it starts: no registered source lacks a reader."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import load_path  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(SCRIPT.parent))
    assert load_path.missing_readers() == []
    assert {name for name in load_path.SOURCES} == expected_jobs()
