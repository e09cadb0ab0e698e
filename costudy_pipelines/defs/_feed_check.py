"""A feed's checks run as one step. Each check (integrity, run accounting, reject rate, the
count comparison, shape drift) is a `FeedCheck`: its spec and how it is evaluated; a feed's
checks become one `multi_asset_check` that evaluates the selected ones. One step instead of
one per check: a partition's run is the asset and one check step, not five steps, each of
which costs its own events (and connections) in Dagster's storage and, on the multiprocess
executor, a process."""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import dagster as dg

from costudy_pipelines.defs.resources import PostgresResource


@dataclass
class FeedCheckContext:
    """What a feed's checks share in their step: the step's context, and the asset's latest
    materialization, read from the instance once for all of them."""

    context: dg.AssetCheckExecutionContext
    asset_key: dg.AssetKey

    @cached_property
    def latest(self) -> dg.EventLogEntry | None:
        return self.context.instance.get_latest_materialization_event(self.asset_key)

    @property
    def warehouse(self) -> PostgresResource:
        return self.context.resources.warehouse_db


@dataclass(frozen=True)
class FeedCheck:
    """One check of a feed: its spec (name, description, blocking) and its evaluation."""

    spec: dg.AssetCheckSpec
    evaluate: Callable[[FeedCheckContext], dg.AssetCheckResult]
    resource_keys: frozenset[str] = frozenset({"warehouse_db"})


def checks_step(asset_key: dg.AssetKey, checks: Sequence[FeedCheck]) -> dg.AssetChecksDefinition:
    """The feed's checks as one step that evaluates those selected (all, or any subset: a
    check can still be run alone)."""

    @dg.multi_asset_check(
        specs=[check.spec for check in checks],
        name=f"{asset_key.to_python_identifier()}_checks",
        can_subset=True,
        required_resource_keys=set().union(*(check.resource_keys for check in checks)),
    )
    def _checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        shared = FeedCheckContext(context, asset_key)
        for check in checks:
            if check.spec.key in context.selected_asset_check_keys:
                yield check.evaluate(shared)._replace(
                    asset_key=asset_key, check_name=check.spec.name
                )

    return _checks
