"""Loading the definitions pays for what a run needs, not for every source's library: each
process that loads them (a run, a step, a sensor tick, `dg check defs`) once imported gspread
(with google-auth and requests), pymongo, duckdb and numpy, pgserver and celery, ~0.6 s of a
0.2 s Whop sync's run. And Dagster's definitions state is read once per build, not once per
module of the defs folder, and what the build made is frozen from the garbage collector
(costudy_pipelines/load_context.py)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import pytest
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)

from costudy_pipelines.definitions import project_definitions
from costudy_pipelines.lib.settings import PROJECT_ROOT
from costudy_pipelines_tests.harness import HANG_S

# Imported by the source, the command or the executor that uses them, never by the load.
NOT_AT_LOAD = (
    "gspread",
    "google.auth",
    "requests",
    "pymongo",
    "bson",
    "duckdb",
    "numpy",
    "pandas",
    "pgserver",
    "platformdirs",
    "psutil",
    "celery",
    "dagster_celery",
    # an API source's reader: its client.py is opened by a run (RegisteredSource.open_reader)
    "costudy_pipelines.sources.whop.client",
    "costudy_pipelines.sources.ghl.client",
)

LOAD = """
import json, sys
from costudy_pipelines.definitions import project_definitions
project_definitions().get_repository_def().get_all_jobs()
print(json.dumps(sorted(sys.modules)))
"""


def test_loading_the_definitions_imports_no_heavy_library() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    # stderr stays the test's own: a failed load shows its traceback there
    out = subprocess.check_output(
        [sys.executable, "-c", LOAD], cwd=PROJECT_ROOT, env=env, text=True, timeout=HANG_S
    )
    modules = set(json.loads(out.splitlines()[-1]))
    # what a run does need is there: the list is the load's
    assert {"dagster", "psycopg", "costudy_pipelines.defs._api_sources"} <= modules
    imported = sorted(
        name
        for name in NOT_AT_LOAD
        if name in modules or any(m.startswith(f"{name}.") for m in modules)
    )
    assert imported == []


def count_contexts(monkeypatch: pytest.MonkeyPatch) -> list[DefinitionsLoadType]:
    made: list[DefinitionsLoadType] = []
    original = DefinitionsLoadContext.__init__

    def counting(
        self: DefinitionsLoadContext, load_type: DefinitionsLoadType, **kw: object
    ) -> None:
        made.append(load_type)
        original(self, load_type, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(DefinitionsLoadContext, "__init__", counting)
    return made


def test_one_load_context_per_build_and_its_result_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each context Dagster makes for itself reads the definitions state from the instance's
    database (one PostgreSQL connection each): the build makes one, not one per defs module."""
    made = count_contexts(monkeypatch)
    build = project_definitions.__wrapped__  # the build itself, past the per-process cache
    # none set, as in `dagster asset materialize -m` (an earlier test's run may have set one)
    monkeypatch.setattr(DefinitionsLoadContext, "_instance", None)
    built = build()
    assert made == [DefinitionsLoadType.INITIALIZATION]
    # frozen: out of every generation the collector walks (at exit too), still tracked
    assert gc.is_tracked(built) and not any(o is built for o in gc.get_objects())
    assert not DefinitionsLoadContext.is_set()  # nothing left pinned after the build

    own = DefinitionsLoadContext(DefinitionsLoadType.INITIALIZATION)
    made.clear()  # a context already set (the code server's) is the one used
    with DefinitionsLoadContext.scoped(own):
        build()
    assert made == []
