"""What the benchmarks measure a process with (benchmarks/bench_server.py)."""

from __future__ import annotations

import subprocess
import sys

from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines_tests.harness import HANG_S

HELD_MB = 300
# A parent that holds HELD_MB (as load_ratio's parent holds the world it generated) starts a
# child that holds nothing: the child's own peak, and what getrusage says of it.
CHILD = (
    "import resource, bench_server; print(bench_server.peak_rss_mb(),"
    " resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
)
PARENT = f"""
import subprocess, sys
held = bytearray(b"x") * ({HELD_MB} * 2**20)
child = [sys.executable, "-c", {CHILD!r}]
print(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
"""


def test_a_childs_peak_memory_is_its_own_not_its_parents() -> None:
    """Linux keeps ru_maxrss across fork and exec: load_ratio's load processes reported their
    parent's 200 MB at 1M records, the flat-memory target measured on the wrong process."""
    done = subprocess.run(
        [sys.executable, "-c", PARENT],
        cwd=PROJECT_ROOT / "benchmarks",
        capture_output=True,
        text=True,
        timeout=HANG_S,
        check=True,
    )
    own_mb, ru_maxrss_mb = map(float, done.stdout.split())
    assert ru_maxrss_mb >= HELD_MB  # the inherited figure this replaced
    assert own_mb < HELD_MB / 2, own_mb
