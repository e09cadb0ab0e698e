"""A feed's checks, evaluated in its asset's own op. Each check (integrity, run accounting,
reject rate, the count comparison, shape drift) is a `FeedCheck`: its spec and how it is
evaluated. The feed's asset declares them (`check_specs`) and evaluates those selected after its
sync (`evaluate_checks`): a partition's run is one step, as a one-asset project's is, instead of
the asset and one step per check, each of which cost its own events (and connections) in
Dagster's storage and, on the multiprocess executor, a process of its own."""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import dagster as dg

from costudy_pipelines.defs.resources import PostgresResource

# The asset's op evaluates them (a check-only run of it too); a separate check op could as well.
CheckingContext = dg.AssetExecutionContext | dg.AssetCheckExecutionContext


@dataclass
class FeedCheckContext:
    """What a feed's checks share in their step: the step's context, and the asset's latest
    materialization, read from the instance once for all of them."""

    context: CheckingContext
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


def evaluate_checks(
    context: CheckingContext, asset_key: dg.AssetKey, checks: Sequence[FeedCheck]
) -> Iterator[dg.AssetCheckResult]:
    """The results of the selected checks (all, or a subset: a check can be run alone). After
    a sync in the same op its materialization is already stored: the checks see this run."""
    shared = FeedCheckContext(context, asset_key)
    for check in checks:
        if check.spec.key in context.selected_asset_check_keys:
            result = check.evaluate(shared)
            yield result._replace(asset_key=asset_key, check_name=check.spec.name)
