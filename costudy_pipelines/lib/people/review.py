"""Probable duplicates under review, never a silent merge (issue 16).

Scoring (matching.py) proposes pairs of users; this module stores them, lists the pending
ones and records an operator's decisions:

- `store_candidates` replaces the previous scoring's undecided pairs with the new ones in one
  transaction (a COPY and three set-based statements); decided pairs stay, and each user's
  strong features (user_identity) are rewritten. With `AutoAccept` (off by default) it also
  accepts the pairs scored at or above its threshold that were never decided before (an
  operator's undo or reject is never overridden), most probable first, when an identifier
  beyond the name agrees exactly (MatchCandidate.corroborated) and unless the pair would
  join two persons whose dates of birth or phones differ, or grow a person beyond
  `max_group_size` users: any other pair stays pending, and the report says why.
- `decide` (accept / reject) and `undo` write the current decision per pair (user_links) and
  append every step to user_link_decisions, who, when and why: a reversal is a new row.
- A rejected pair is never pending again however often it is re-scored; an accepted pair is
  not pending either, and joins its users into one person (the `people` view).

Pairs are stored smaller user id first; every function takes them in either order.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Literal, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from costudy_pipelines.lib.people.matching import (
    DEFAULT_MAX_GROUP_SIZE,
    STRONG_FEATURES,
    MatchCandidate,
    UserIdentity,
)

Decision = Literal["accepted", "rejected"]
DECISIONS: tuple[Decision, ...] = ("accepted", "rejected")
AUTO_DECIDER = "auto-accept"
UNCORROBORATED = "no identifier beyond the name agrees exactly"
SAMPLES = 20

Pair = tuple[UUID, UUID]
User = TypeVar("User", bound=Hashable)  # a user id: UUID in the warehouse, text in benchmarks


def ordered(a: UUID, b: UUID) -> Pair:
    """The pair as stored: smaller user id first (PostgreSQL orders uuids as Python does)."""
    if a == b:
        raise ValueError(f"a user cannot be paired with itself ({a})")
    return (a, b) if a < b else (b, a)


@dataclass(frozen=True)
class AutoAccept:
    """Accept, without an operator, never-decided pairs scored at or above `above`, within
    plausibility: no person with two dates of birth or phones, none beyond max_group_size."""

    above: float
    max_group_size: int = DEFAULT_MAX_GROUP_SIZE

    def __post_init__(self) -> None:
        if not 0 < self.above <= 1:
            raise ValueError(f"auto_accept_above must be within (0, 1], not {self.above!r}")
        if self.max_group_size < 2:
            raise ValueError(f"max_group_size must be 2 or more, not {self.max_group_size!r}")


@dataclass(frozen=True)
class StoreReport:
    scored: int  # distinct pairs handed over
    removed: int  # undecided pairs of the previous scoring that this one no longer proposes
    pending: int  # pairs awaiting a decision after this scoring
    auto_accepted: int
    # pairs above the threshold left for review, by reason ("different birth_date", ...)
    held: dict[str, int] = field(default_factory=dict)
    held_samples: list[str] = field(default_factory=list)  # "email ~ email: reason"


@dataclass(frozen=True)
class PendingCandidate:
    user_a: UUID
    user_b: UUID
    email_a: str
    email_b: str
    name_a: str | None
    name_b: str | None
    probability: float
    agreed: list[str]
    disagreed: list[str]
    scored_at: datetime


@dataclass(frozen=True)
class DecisionRecord:
    user_a: UUID
    user_b: UUID
    decision: str  # accepted, rejected or undone
    previous: str | None  # the decision it replaced; None: the pair was pending
    probability: float | None
    decided_by: str
    decided_at: datetime
    reason: str


STAGE = """
create temp table people_match_stage (
    user_a uuid not null, user_b uuid not null, probability float8 not null,
    agreed text[] not null, disagreed text[] not null, corroborated boolean not null
) on commit drop
"""
COPY_STAGE = "copy people_match_stage from stdin"
STAGE_TYPES = ["uuid", "uuid", "float8", "text[]", "text[]", "bool"]

# One row per pair, the highest probability winning when the scoring repeated a pair.
DEDUPLICATE = """
create temp table people_match_scored on commit drop as
select distinct on (user_a, user_b) * from people_match_stage
order by user_a, user_b, probability desc
"""

REMOVE_UNDECIDED = """
delete from user_match_candidates c
where not exists (select from user_links l where (l.user_a, l.user_b) = (c.user_a, c.user_b))
  and not exists (
      select from people_match_scored s where (s.user_a, s.user_b) = (c.user_a, c.user_b)
  )
"""

UPSERT = """
insert into user_match_candidates (user_a, user_b, probability, agreed, disagreed, scored_at)
select user_a, user_b, probability, agreed, disagreed, now() from people_match_scored
on conflict (user_a, user_b) do update set
    probability = excluded.probability,
    agreed = excluded.agreed,
    disagreed = excluded.disagreed,
    scored_at = excluded.scored_at
"""

# Pairs never decided (no history at all), at or above the threshold, most probable first.
ELIGIBLE = """
select s.user_a, s.user_b, s.corroborated from people_match_scored s
where s.probability >= %(threshold)s
  and not exists (
      select from user_link_decisions h where (h.user_a, h.user_b) = (s.user_a, s.user_b)
  )
order by s.probability desc, s.user_a, s.user_b
"""
ACCEPTED_LINKS = "select user_a, user_b from user_links where decision = 'accepted'"
STRONG = "select user_id, birth_date, phone from user_identity where user_id = any(%(users)s)"
EMAILS = "select id, email from users where id = any(%(users)s)"

AUTO_STAGE = """
create temp table people_auto_accept (user_a uuid not null, user_b uuid not null)
on commit drop
"""
AUTO_ACCEPT = """
with accepted as (
    insert into user_links (user_a, user_b, decision, probability, decided_by, decided_at, reason)
    select s.user_a, s.user_b, 'accepted', s.probability, %(by)s, now(),
           format('probability %%s >= auto_accept_above %%s', round(s.probability::numeric, 4),
                  %(threshold)s::text)
    from people_auto_accept a join people_match_scored s using (user_a, user_b)
    on conflict (user_a, user_b) do nothing
    returning *
)
insert into user_link_decisions
    (user_a, user_b, decision, previous, probability, decided_by, decided_at, reason)
select user_a, user_b, decision, null, probability, decided_by, decided_at, reason from accepted
"""

IDENTITY_CLEAR = "delete from user_identity"
IDENTITY_COPY = "copy user_identity (user_id, birth_date, phone) from stdin"

COUNT_PENDING = """
select count(*) from user_match_candidates c
where not exists (select from user_links l where (l.user_a, l.user_b) = (c.user_a, c.user_b))
"""

# Deciders queue behind each other: each reads the decision it replaces, then writes.
LOCK = "lock table user_links in share row exclusive mode"

WANTED = """
wanted (user_a, user_b) as (
    select distinct a, b from unnest(%(a)s::uuid[], %(b)s::uuid[]) as p (a, b)
)
"""

DECIDE = f"""
with {WANTED},
changing as (
    select w.user_a, w.user_b, l.decision as previous, c.probability
    from wanted w
    left join user_links l on (l.user_a, l.user_b) = (w.user_a, w.user_b)
    left join user_match_candidates c on (c.user_a, c.user_b) = (w.user_a, w.user_b)
    where l.decision is distinct from %(decision)s
),
written as (
    insert into user_links (user_a, user_b, decision, probability, decided_by, decided_at, reason)
    select user_a, user_b, %(decision)s, probability, %(by)s, now(), %(why)s from changing
    on conflict (user_a, user_b) do update set
        decision = excluded.decision,
        probability = excluded.probability,
        decided_by = excluded.decided_by,
        decided_at = excluded.decided_at,
        reason = excluded.reason
    returning user_a, user_b
)
insert into user_link_decisions
    (user_a, user_b, decision, previous, probability, decided_by, decided_at, reason)
select c.user_a, c.user_b, %(decision)s, c.previous, c.probability, %(by)s, now(), %(why)s
from changing c join written w on (w.user_a, w.user_b) = (c.user_a, c.user_b)
returning user_a, user_b, decision, previous, probability, decided_by, decided_at, reason
"""

UNDO = f"""
with {WANTED},
removed as (
    delete from user_links l using wanted w
    where (l.user_a, l.user_b) = (w.user_a, w.user_b)
    returning l.user_a, l.user_b, l.decision, l.probability
)
insert into user_link_decisions
    (user_a, user_b, decision, previous, probability, decided_by, decided_at, reason)
select user_a, user_b, 'undone', decision, probability, %(by)s, now(), %(why)s from removed
returning user_a, user_b, decision, previous, probability, decided_by, decided_at, reason
"""

PENDING = """
select c.user_a, c.user_b, ua.email as email_a, ub.email as email_b, ua.name as name_a,
       ub.name as name_b, c.probability, c.agreed, c.disagreed, c.scored_at
from user_match_candidates c
join users ua on ua.id = c.user_a
join users ub on ub.id = c.user_b
where not exists (select from user_links l where (l.user_a, l.user_b) = (c.user_a, c.user_b))
order by c.probability desc, c.user_a, c.user_b
limit %(limit)s
"""

HISTORY = """
select user_a, user_b, decision, previous, probability, decided_by, decided_at, reason
from user_link_decisions
where (user_a, user_b) = (%(a)s, %(b)s)
order by id
"""

LINK_COUNTS = (
    """
select
    (select count(*) from user_match_candidates) as candidates,
    ("""
    + COUNT_PENDING
    + """) as pending,
    count(*) filter (where decision = 'accepted') as accepted,
    count(*) filter (where decision = 'rejected') as rejected,
    count(*) filter (where decision = 'accepted' and decided_by = %(auto)s) as auto_accepted
from user_links
"""
)

RESOLVE = "select id, email from users where email = any(%(emails)s) or id = any(%(ids)s)"


def store_candidates(
    conn: psycopg.Connection,
    candidates: Iterable[MatchCandidate],
    *,
    auto_accept: AutoAccept | None = None,
    identities: Iterable[UserIdentity] | None = None,
) -> StoreReport:
    """Replace the previous scoring's undecided pairs with `candidates`, keep decided pairs
    (their score refreshed when scored again), rewrite user_identity from `identities` when
    given, and auto-accept what `auto_accept` allows. `candidates` may be a stream, but not
    one still reading from `conn` (the COPY holds it)."""
    with conn.transaction():
        if identities is not None:
            conn.execute(IDENTITY_CLEAR)
            with conn.cursor() as cur, cur.copy(IDENTITY_COPY) as copy:
                copy.set_types(["uuid", "text", "text"])
                for identity in identities:
                    copy.write_row((identity.user_id, identity.birth_date, identity.phone))
        conn.execute(STAGE)
        with conn.cursor() as cur, cur.copy(COPY_STAGE) as copy:
            copy.set_types(STAGE_TYPES)
            for candidate in candidates:
                a, b = ordered(UUID(str(candidate.user_a)), UUID(str(candidate.user_b)))
                copy.write_row(
                    (a, b, candidate.probability, list(candidate.agreed),
                     list(candidate.disagreed), candidate.corroborated)
                )  # fmt: skip
        conn.execute(DEDUPLICATE)
        scored = _count(conn, "select count(*) from people_match_scored")
        removed = conn.execute(REMOVE_UNDECIDED).rowcount
        conn.execute(UPSERT)
        auto, held, samples = 0, dict[str, int](), list[str]()
        if auto_accept is not None:
            conn.execute(LOCK)
            auto, held, samples = _auto_accept(conn, auto_accept)
        pending = _count(conn, COUNT_PENDING)
    return StoreReport(scored, removed, pending, auto, held, samples)


class _Persons(Generic[User]):
    """Users grouped into persons (union-find over accepted links), with each person's
    strong feature values: what an automatic acceptance may join."""

    def __init__(self, strong: Mapping[User, Sequence[str | None]]) -> None:
        self.parent: dict[User, User] = {}
        self.members: dict[User, int] = {}
        self.values: dict[User, list[set[str]]] = {}
        self.strong = strong

    def root(self, user: User) -> User:
        if user not in self.parent:
            self.parent[user] = user
            self.members[user] = 1
            self.values[user] = [{v} if v else set() for v in self.strong.get(user, ())]
            self.values[user] += [set()] * (len(STRONG_FEATURES) - len(self.values[user]))
        while self.parent[user] != user:
            self.parent[user] = self.parent[self.parent[user]]
            user = self.parent[user]
        return user

    def refusal(self, a: User, b: User, max_size: int) -> str | None:
        """Why joining a's and b's persons would be implausible; None when it is not."""
        ra, rb = self.root(a), self.root(b)
        if ra == rb:
            return None
        if self.members[ra] + self.members[rb] > max_size:
            return f"person beyond max_group_size {max_size}"
        for name, left, right in zip(
            STRONG_FEATURES, self.values[ra], self.values[rb], strict=True
        ):
            if len(left | right) > 1:
                return f"different {name}"
        return None

    def join(self, a: User, b: User) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[rb] = ra
            self.members[ra] += self.members.pop(rb)
            self.values[ra] = [
                x | y for x, y in zip(self.values[ra], self.values.pop(rb), strict=True)
            ]


def plan_acceptance(
    pairs: Iterable[tuple[User, User]],
    links: Iterable[Sequence[User]],
    strong: Mapping[User, Sequence[str | None]],
    max_group_size: int,
) -> tuple[list[tuple[User, User]], list[tuple[User, User, str]]]:
    """Which of `pairs` (most probable first) automatic acceptance takes, given the accepted
    `links` and each user's strong features (STRONG_FEATURES order): (accepted, refused with
    the reason). A pair joining two persons is refused when the person would hold two values
    of a strong feature or more than max_group_size users."""
    persons: _Persons[User] = _Persons(strong)
    for a, b in links:
        persons.join(a, b)
    chosen: list[tuple[User, User]] = []
    refused: list[tuple[User, User, str]] = []
    for a, b in pairs:
        reason = persons.refusal(a, b, max_group_size)
        if reason is None:
            persons.join(a, b)
            chosen.append((a, b))
        else:
            refused.append((a, b, reason))
    return chosen, refused


def _auto_accept(
    conn: psycopg.Connection, rule: AutoAccept
) -> tuple[int, dict[str, int], list[str]]:
    """Accept the eligible pairs that keep every person plausible; (accepted, held by reason,
    samples of held pairs)."""
    eligible = conn.execute(ELIGIBLE, {"threshold": rule.above}).fetchall()
    if not eligible:
        return 0, {}, []
    links = conn.execute(ACCEPTED_LINKS).fetchall()
    users = list({u for pair in [*links, *eligible] for u in pair[:2]})
    strong = {row[0]: tuple(row[1:]) for row in conn.execute(STRONG, {"users": users})}
    pairs = [(a, b) for a, b, corroborated in eligible if corroborated]
    chosen, refused = plan_acceptance(pairs, links, strong, rule.max_group_size)
    refused += [(a, b, UNCORROBORATED) for a, b, corroborated in eligible if not corroborated]
    held: dict[str, int] = {}
    for _, _, reason in refused:
        held[reason] = held.get(reason, 0) + 1
    if chosen:
        conn.execute(AUTO_STAGE)
        with conn.cursor() as cur, cur.copy("copy people_auto_accept from stdin") as copy:
            copy.set_types(["uuid", "uuid"])
            for pair in chosen:
                copy.write_row(pair)
        params = {"by": AUTO_DECIDER, "threshold": rule.above}
        conn.execute(AUTO_ACCEPT, params)
    sample = refused[:SAMPLES]
    users = [user for a, b, _ in sample for user in (a, b)]
    emails: dict[UUID, str] = dict(conn.execute(EMAILS, {"users": users}))
    samples = [f"{emails.get(a, a)} ~ {emails.get(b, b)}: {reason}" for a, b, reason in sample]
    return len(chosen), held, samples


def _count(conn: psycopg.Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _pair_params(pairs: Sequence[Pair]) -> dict[str, list[UUID]]:
    if not pairs:
        raise ValueError("no pairs given")
    stored = [ordered(a, b) for a, b in pairs]
    return {"a": [a for a, _ in stored], "b": [b for _, b in stored]}


def _who(by: str, why: str) -> None:
    if not by.strip():
        raise ValueError("a decision needs who took it (--by)")
    if not why.strip():
        raise ValueError("a decision needs a reason (--why)")


def decide(
    conn: psycopg.Connection, pairs: Sequence[Pair], decision: Decision, *, by: str, why: str
) -> list[DecisionRecord]:
    """Accept or reject `pairs` (candidates or not); returns the pairs whose decision changed
    (a pair already so decided is left as it is, its history unchanged)."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    _who(by, why)
    params = {**_pair_params(pairs), "decision": decision, "by": by, "why": why}
    with conn.transaction():
        conn.execute(LOCK)
        with conn.cursor(row_factory=class_row(DecisionRecord)) as cur:
            return cur.execute(DECIDE, params).fetchall()


def undo(
    conn: psycopg.Connection, pairs: Sequence[Pair], *, by: str, why: str
) -> list[DecisionRecord]:
    """Withdraw the decisions on `pairs`: each is pending again (if still a candidate) and the
    history records who undid what, when and why. Pairs without a decision are left out."""
    _who(by, why)
    params = {**_pair_params(pairs), "by": by, "why": why}
    with conn.transaction():
        conn.execute(LOCK)
        with conn.cursor(row_factory=class_row(DecisionRecord)) as cur:
            return cur.execute(UNDO, params).fetchall()


def pending(conn: psycopg.Connection, *, limit: int | None = None) -> list[PendingCandidate]:
    """Candidates awaiting a decision, most probable first, with both users' email and name."""
    with conn.cursor(row_factory=class_row(PendingCandidate)) as cur:
        return cur.execute(PENDING, {"limit": limit}).fetchall()


def history(conn: psycopg.Connection, a: UUID, b: UUID) -> list[DecisionRecord]:
    """Every decision ever taken on the pair, oldest first."""
    first, second = ordered(a, b)
    with conn.cursor(row_factory=class_row(DecisionRecord)) as cur:
        return cur.execute(HISTORY, {"a": first, "b": second}).fetchall()


def link_counts(conn: psycopg.Connection) -> dict[str, int]:
    """candidates, pending, accepted, rejected, auto_accepted."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(LINK_COUNTS, {"auto": AUTO_DECIDER}).fetchone()
    return {key: int(value) for key, value in (row or {}).items()}


def normalise_email(text: str) -> str:
    """As users.email is stored: trimmed, lower-case, Unicode NFC."""
    return unicodedata.normalize("NFC", text.strip().lower())


def resolve_users(conn: psycopg.Connection, refs: Sequence[str]) -> list[UUID]:
    """Each reference (a user id, or an email in any spelling) as its user's id."""
    ids = {ref: _uuid(ref) for ref in refs}
    emails = {ref: normalise_email(ref) for ref in refs if ids[ref] is None}
    params = {"emails": list(emails.values()), "ids": [i for i in ids.values() if i]}
    found: dict[str | UUID, UUID] = {}
    for user_id, email in conn.execute(RESOLVE, params).fetchall():
        found[user_id] = found[email] = user_id
    resolved = [found.get(ids[ref] or emails[ref]) for ref in refs]
    unknown = [ref for ref, user in zip(refs, resolved, strict=True) if user is None]
    if unknown:
        raise ValueError(f"no user with id or email {', '.join(map(repr, unknown))}")
    return [user for user in resolved if user is not None]


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text.strip())
    except ValueError:
        return None
