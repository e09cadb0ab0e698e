"""One Dagster load context for the whole build of the project's Definitions.

Dagster reads its definitions-state storage (`get_latest_defs_state_info`, a query of the
instance's database) whenever a definitions load context is asked for and none is set: once per
module of the defs folder, twice each (47 queries, each its own PostgreSQL connection under
dagster-postgres: 0.2-0.4 s on this machine). Dagster's code server sets one context for a load;
`dagster asset materialize -m ...`, `dg check defs`, a step's process and the CLI do not, and
paid that on every start. Here the build gets one, made once, unless a context is already set
(the code server's: it is kept as it is).
"""

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
