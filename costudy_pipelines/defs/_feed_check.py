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
    """What a feed's checks share in their op: its context, and the run of the asset's latest
    materialization, found once for all of them."""

    context: CheckingContext
    asset_key: dg.AssetKey
    synced: bool  # the op has just synced the asset: its run is the latest materialization's

    @cached_property
    def latest_run_id(self) -> str | None:
        """This run's id right after its sync (nothing to ask the instance), else the run of
        the latest materialization the instance holds (None: never materialized)."""
        if self.synced:
            return self.context.run.run_id
        event = self.context.instance.get_latest_materialization_event(self.asset_key)
        return event.run_id if event else None

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
    context: CheckingContext,
    asset_key: dg.AssetKey,
    checks: Sequence[FeedCheck],
    *,
    synced: bool = False,
) -> Iterator[dg.AssetCheckResult]:
    """The results of the selected checks (all, or a subset: a check can be run alone), of the
    run the op has just `synced`, or else of the asset's latest materialization."""
    shared = FeedCheckContext(context, asset_key, synced)
    for check in checks:
        if check.spec.key in context.selected_asset_check_keys:
            result = check.evaluate(shared)
            yield result._replace(asset_key=asset_key, check_name=check.spec.name)
