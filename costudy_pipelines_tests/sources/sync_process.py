"""`python -m costudy_pipelines_tests.sources.sync_process ASSET DAY`: one run of one asset for
one day partition, in a process of its own (for the tests that kill a sync mid-load)."""

from __future__ import annotations

import sys
from datetime import date

import dagster as dg

from costudy_pipelines_tests.sources.runs import run_assets

if __name__ == "__main__":
    asset, day = sys.argv[1], date.fromisoformat(sys.argv[2])
    run = run_assets(day, day, dg.AssetSelection.assets(asset))
    sys.exit(0 if run.success else 1)
