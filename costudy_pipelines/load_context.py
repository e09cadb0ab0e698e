"""How a process builds the project's Definitions (project_definitions, once per process).

One Dagster load context for the whole build. Dagster reads its definitions-state storage
(`get_latest_defs_state_info`, a query of the instance's database) whenever a definitions load
context is asked for and none is set: once per module of the defs folder, twice each (47
queries, each its own PostgreSQL connection under dagster-postgres: 0.2-0.4 s on this
machine). Dagster's code server sets one context for a load; `dagster asset materialize -m ...`,
`dg check defs`, a step's process and the CLI do not, and paid that on every start. The build
gets one, made once, unless a context is already set (the code server's: it is kept).

Then what the import and the build made (Dagster, the project, the Definitions: ~175,000
objects that live as long as the process) is frozen out of the cyclic garbage collector's
view (`gc.freeze()`): every later collection, and the one at the process's exit, walked all of
them. Measured on this machine: a process that only imports Dagster spends ~0.4 s exiting,
and a run of the project ~1 s; frozen, the exit is immediate. Frozen objects are still freed
by reference counting; the ~1,400 unreachable cycles the build leaves (a full collection
finds them, at 0.1 s) stay for the process's life.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)


@contextmanager
def one_load_context() -> Iterator[None]:
    """The context already set, or one INITIALIZATION context (what Dagster would make for
    each request) shared by every request while the block runs."""
    if DefinitionsLoadContext.is_set():
        yield
        return
    with DefinitionsLoadContext.scoped(DefinitionsLoadContext(DefinitionsLoadType.INITIALIZATION)):
        yield


@contextmanager
def definitions_build() -> Iterator[None]:
    """The build in one load context; what it made frozen once it is done."""
    with one_load_context():
        yield
    gc.freeze()
