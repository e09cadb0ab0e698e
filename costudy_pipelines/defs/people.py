"""Probable duplicates and people (issue 16): never a silent merge.

- `user_match_candidates` scores pairs of users as probably one person (lib/people/matching),
  on the identity features every registered source declares, and stores them for review
  (lib/people/review): the previous scoring's undecided pairs are replaced, decided ones kept;
  with `[people] auto_accept_above` in sources.toml (off by default) the pairs scored at or
  above it that were never decided are accepted, unless they would make a person implausible.
- `people` is a view of sql/views (its asset built by warehouse_views); this module gives it
  its metadata and its checks: no user in two persons, both users of every accepted link in
  one person, and no person holding two dates of birth or phones or more than
  `[people] max_group_size` users.
- `review_people` is the operator's job (Launchpad → run config): accept, reject or undo
  pairs, with who and why, the same as `costudy people accept|reject|undo`.
"""

import time
from typing import Literal

import dagster as dg
import psycopg
from pydantic import Field

from costudy_pipelines.defs._metadata import Metadata, metadata_table
from costudy_pipelines.defs.resources import PostgresResource
from costudy_pipelines.lib.people import people, review
from costudy_pipelines.lib.people.matching import MatchRun, MatchSettings, score_warehouse
from costudy_pipelines.sources.config import PeopleConfig, load_sources_config
from costudy_pipelines.sources.registry import load_registry

PEOPLE_KEY = dg.AssetKey("people")
TOP_PAIRS = 10
PAIR_COLUMNS = {
    "email_a": "string",
    "email_b": "string",
    "name_a": "string",
    "name_b": "string",
    "probability": "float",
    "agreed": "string",
    "disagreed": "string",
}


def top_pairs(pending: list[review.PendingCandidate]) -> dg.MetadataValue:
    rows = [
        {
            "email_a": c.email_a,
            "email_b": c.email_b,
            "name_a": c.name_a,
            "name_b": c.name_b,
            "probability": round(c.probability, 4),
            "agreed": ", ".join(c.agreed),
            "disagreed": ", ".join(c.disagreed),
        }
        for c in pending
    ]
    return metadata_table(rows, PAIR_COLUMNS)


@dg.asset(
    deps=[dg.AssetKey("users")],
    group_name="people",
    kinds={"postgres"},
    description="Pairs of users (two emails) scored as probably one person, with the fields "
    "that agreed and disagreed, waiting for an operator's decision (`costudy people review`, "
    "job review_people). Never merged silently; auto-acceptance is off unless configured.",
)
def user_match_candidates(warehouse_db: PostgresResource) -> dg.MaterializeResult:
    config = load_sources_config().people
    identity = load_registry().identity_sources()
    auto_accept = (
        None
        if config.auto_accept_above is None
        else review.AutoAccept(config.auto_accept_above, config.max_group_size)
    )
    run = MatchRun()
    with warehouse_db.connect() as conn:
        started = time.monotonic()
        with score_warehouse(conn, identity, settings=match_settings(config), run=run) as scoring:
            stored = review.store_candidates(
                conn,
                scoring.candidates(),
                auto_accept=auto_accept,
                identities=scoring.identities(),
            )
        stored_at = time.monotonic()
        counts = review.link_counts(conn)
        top = review.pending(conn, limit=TOP_PAIRS)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": counts["candidates"],
            "candidates": stored.scored,
            "pending": counts["pending"],
            "accepted": counts["accepted"],
            "rejected": counts["rejected"],
            "auto_accepted": stored.auto_accepted,
            "auto_accepted_total": counts["auto_accepted"],
            "auto_accept_above": ("off" if auto_accept is None else str(auto_accept.above)),
            "held_for_review": dg.MetadataValue.json(stored.held),
            "held_samples": dg.MetadataValue.json(stored.held_samples),
            "dropped_undecided": stored.removed,
            "top_pending_pairs": top_pairs(top),
            "users_scored": run.users,
            "compared_pairs": run.compared_pairs,
            "pairs_by_rule": dg.MetadataValue.json(run.pairs_by_rule),
            "skipped_blocks": dg.MetadataValue.json(run.skipped_blocks),
            "prior": run.prior if run.prior is not None else "not fitted",
            "prior_bounds": dg.MetadataValue.json(list(run.prior_bounds or ())),
            "features_left_out": dg.MetadataValue.json(run.left_out),
            "feature_weights_bits": dg.MetadataValue.json(run.weights),
            "not_scored": run.not_scored or "",
            "identity_sources": dg.MetadataValue.json(
                {source.table: sorted(source.fields) for source in identity}
            ),
            "score_stages_s": dg.MetadataValue.json(run.seconds),
            "score_and_store_s": round(stored_at - started, 3),
        }
    )


def match_settings(config: PeopleConfig) -> MatchSettings:
    return MatchSettings(
        threshold=config.threshold,
        max_block_size=config.max_block_size,
        max_group_size=config.max_group_size,
    )


def people_metadata(conn: psycopg.Connection) -> Metadata:
    """What the `people` view asset shows after each refresh."""
    found = people.summary(conn)
    return {
        "persons": found["persons"],
        "users_in_multi_user_persons": found["users_in_multi_user_persons"],
        "multi_user_persons": found["multi_user_persons"],
        "largest_person_users": found["largest_person_users"],
        "largest_person_emails": dg.MetadataValue.json(found["largest_person_emails"] or []),
    }


PEOPLE_METADATA = {"people": people_metadata}


@dg.asset_check(asset=PEOPLE_KEY, description="Each user belongs to exactly one person.")
def no_user_in_two_persons(warehouse_db: PostgresResource) -> dg.AssetCheckResult:
    with warehouse_db.connect() as conn:
        found = people.users_in_two_persons(conn)
    return dg.AssetCheckResult(
        passed=found.ok, metadata={"users": found.count, "samples": found.samples}
    )


@dg.asset_check(
    asset=PEOPLE_KEY, description="Both users of every accepted link belong to one person."
)
def accepted_links_within_one_person(warehouse_db: PostgresResource) -> dg.AssetCheckResult:
    with warehouse_db.connect() as conn:
        found = people.split_links(conn)
    return dg.AssetCheckResult(
        passed=found.ok, metadata={"split_links": found.count, "samples": found.samples}
    )


@dg.asset_check(
    asset=PEOPLE_KEY,
    description="No person is implausible: none holds two dates of birth or two phones (as "
    "matching normalised them, user_identity), none more users than [people] max_group_size. "
    "Fix: `costudy people undo A B --by ... --why ...` on the link that joined them.",
)
def persons_plausible(warehouse_db: PostgresResource) -> dg.AssetCheckResult:
    max_group_size = load_sources_config().people.max_group_size
    with warehouse_db.connect() as conn:
        found = people.implausible_persons(conn, max_group_size=max_group_size)
    return dg.AssetCheckResult(
        passed=found.ok,
        metadata={
            "implausible_persons": found.count,
            "max_group_size": max_group_size,
            "samples": found.samples,
        },
    )


@dg.asset_check(
    asset=dg.AssetKey("revenue_by_person"),
    description="Per currency, revenue per person has the items and net of revenue per user: "
    "grouping users into people moves revenue, never adds or loses any.",
)
def adds_up_to_revenue_by_user(warehouse_db: PostgresResource) -> dg.AssetCheckResult:
    with warehouse_db.connect() as conn:
        found = people.revenue_differences(conn)
    return dg.AssetCheckResult(
        passed=found.ok, metadata={"currencies_differing": found.count, "samples": found.samples}
    )


class ReviewConfig(dg.Config):
    pairs: list[list[str]] = Field(default_factory=list)
    """Pairs of users, each [a, b]: a user id or an email."""
    decision: Literal["accept", "reject", "undo"] = "accept"
    """accept (one person), reject (never proposed again) or undo (the pair is pending again)."""
    by: str = ""
    """Who decides (recorded with the decision)."""
    why: str = ""
    """Why (recorded with the decision)."""


def decide_pairs(conn: psycopg.Connection, config: ReviewConfig) -> list[review.DecisionRecord]:
    """The decision of `config` on its pairs; a wrong pair or a missing by/why is a ValueError."""
    if any(len(pair) != 2 for pair in config.pairs):
        raise ValueError("pairs: each pair is [a, b] (user ids or emails)")
    refs = [ref for pair in config.pairs for ref in pair]
    users = review.resolve_users(conn, refs)
    pairs = list(zip(users[::2], users[1::2], strict=True))
    if config.decision == "undo":
        return review.undo(conn, pairs, by=config.by, why=config.why)
    decision: review.Decision = "accepted" if config.decision == "accept" else "rejected"
    return review.decide(conn, pairs, decision, by=config.by, why=config.why)


@dg.op(out=dg.Out(dg.Nothing), description="Record the decision on the pairs (see the job).")
def record_decisions(
    context: dg.OpExecutionContext, config: ReviewConfig, warehouse_db: PostgresResource
) -> dg.Output[None]:
    with warehouse_db.connect() as conn:
        try:
            records = decide_pairs(conn, config)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from None
        counts = review.link_counts(conn)
        found = people.summary(conn)
    for record in records:
        context.log.info(
            f"{record.user_a} ~ {record.user_b}: {record.previous or 'pending'} -> "
            f"{record.decision} by {record.decided_by}: {record.reason}"
        )
    changes = [
        {
            "user_a": str(r.user_a),
            "user_b": str(r.user_b),
            "previous": r.previous or "pending",
            "now": r.decision,
        }
        for r in records
    ]
    return dg.Output(
        None,
        metadata={
            "changed": len(records),
            "unchanged": len(config.pairs) - len(records),
            "changes": dg.MetadataValue.json(changes),
            "pending": counts["pending"],
            "accepted": counts["accepted"],
            "rejected": counts["rejected"],
            "persons": found["persons"],
            "users_in_multi_user_persons": found["users_in_multi_user_persons"],
        },
    )


@dg.job(
    name="review_people",
    description="Accept, reject or undo probable duplicates (run config: pairs of user ids "
    "or emails, decision, by, why); the same as `costudy people accept|reject|undo`.",
)
def review_people() -> None:
    record_decisions()


defs = dg.Definitions(
    assets=[user_match_candidates],
    asset_checks=[
        no_user_in_two_persons,
        accepted_links_within_one_person,
        persons_plausible,
        adds_up_to_revenue_by_user,
    ],
    jobs=[review_people],
)
