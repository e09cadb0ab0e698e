"""benchmarks/load_ratio.py on a small world: both shapes, both paths, the figures README's
Performance section quotes (the ratio, each process's own peak memory, what the server did)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines_tests.harness import HANG_S

SCRIPT = PROJECT_ROOT / "benchmarks" / "load_ratio.py"


@pytest.mark.slow
def test_both_shapes_load_on_both_paths_with_the_servers_activity(
    pg_server_url: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--records=3000", f"--server-url={pg_server_url}"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=os.environ | {"COSTUDY_HOME": str(tmp_path)},
        timeout=HANG_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    runs = [line for line in lines if "path" in line]
    assert {(line["shape"], line["path"]) for line in runs} == {
        (shape, path)
        for shape in ("small_flat", "large_nested")
        for path in ("project", "reference")
    }
    for line in runs:
        (server,) = line["runs_server"]
        assert server["wal_mb"] > 0, line  # the load wrote; the figure is the job's WAL
        assert set(server) == {"wal_mb", "checkpoints", "autovacuums", "autoanalyzes"}
        # each load process's own peak (not the parent's, which generated the world)
        assert 0 < line["peak_rss_mb"] < 1024
    ratios = [line for line in lines if "ratio" in line]
    assert len(ratios) == 2 and all(line["ratio"] > 0 for line in ratios)
    assert lines[-1]["stage"] == "summary"
