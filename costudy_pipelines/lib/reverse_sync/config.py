"""Which strategy writes each event type: direct (the default) unless configured otherwise.

    REVERSE_SYNC_STRATEGIES="demo_requests=api,contact_submissions=api"

It is deployment configuration, read when the definitions load, because it decides which
resources the assets need: only an event type written through the API needs the API's URL and
token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from costudy_pipelines.lib.reverse_sync.events import EVENT_TYPES, STRATEGIES, Strategy

STRATEGY_VAR = "REVERSE_SYNC_STRATEGIES"
DEFAULT_STRATEGY: Strategy = "direct"


def parse_strategies(text: str) -> dict[str, Strategy]:
    """Every event type's strategy: the defaults, overridden by `event=strategy` pairs."""
    chosen: dict[str, Strategy] = dict.fromkeys(EVENT_TYPES, DEFAULT_STRATEGY)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, strategy = (piece.strip() for piece in item.partition("="))
        if name not in EVENT_TYPES:
            raise ValueError(
                f"{STRATEGY_VAR}: unknown event type {name!r}; "
                f"expected one of {sorted(EVENT_TYPES)}"
            )
        if strategy not in STRATEGIES:
            raise ValueError(
                f"{STRATEGY_VAR}: {name}={strategy!r} is not a strategy; expected one of "
                f"{list(STRATEGIES)}"
            )
        chosen[name] = strategy
    return chosen


def strategies_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Strategy]:
    return parse_strategies((os.environ if environ is None else environ).get(STRATEGY_VAR, ""))
