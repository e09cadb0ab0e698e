"""Imported first by the benchmarks that reuse the test suite's helpers: the checkout's root on
sys.path, since costudy_pipelines_tests is not installed (the package ships without it) and a
script run as `.venv/bin/python benchmarks/x.py` sees only benchmarks/."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
