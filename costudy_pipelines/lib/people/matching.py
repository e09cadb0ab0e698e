"""Probable duplicates: pairs of users (one per email) that are probably one person.

    with pg.connect(url, source="WAREHOUSE_DB_URL") as conn:
        with score_warehouse(conn, identity) as scoring:
            for candidate in scoring.candidates(threshold=0.9):
                candidate.user_a, candidate.user_b, candidate.probability, candidate.agreed

How a pair is scored (README, "How candidates are scored"):

1. Features: every user's email and the identity features the sources declare
   (features.py: name, phone, username, date of birth, city/postcode, address), copied out of
   PostgreSQL as CSV into an in-memory DuckDB and normalised there (PREPARE_SQL): names folded
   and split into a first and a last name (from the email's local part when no source names
   the user); the email split into its local part, its domain and its *residual*, the local
   part without the user's own name in it ("zoe.obrien.1a" for Zoe O'Brien leaves "1a"), so
   that a name is never counted twice; dates of birth as YYYYMMDD whatever their spelling;
   phone digits.
2. Pairs to compare come from blocking rules (BLOCKING_RULES), each an equi-join, so the work
   grows with the size of the blocks, not with users squared. Each survives one typo in a
   name or an email: besides whole values, rules join on the first three and on the last three
   letters of each name (a single typo cannot touch both ends of a name), and on the date of
   birth or the postcode with part of a name. A key shared by more than `max_block_size` users
   (a placeholder phone, a very common name) is skipped by that rule: the pairs are bounded.
3. A Fellegi-Sunter model fitted by expectation maximisation, without labels, on exactly the
   pairs compared: the share of matches among them (the prior, bounded: at most every user in
   a person of `max_group_size`), and for each comparison level how often matches and
   non-matches reach it. Agreeing on a rare name, city or email domain counts for more than on
   a common one (term frequencies). A feature the data lacks (fewer than MIN_FEATURE_PAIRS
   compared pairs have it on both sides) or that does not separate (agreement no more likely
   among matches than among non-matches) is left out with its reason, and scoring never uses
   it; with nothing left, or too few pairs to fit (MIN_TRAINING_PAIRS), nothing is proposed.
4. Every pair at or above the threshold is a candidate, with the features whose evidence was
   for it (agreed: weight > 0) and against it (disagreed: < 0); a feature missing on either
   side is in neither.

Two users never share an email (the warehouse keys users by email), so every candidate is a
pair of different addresses. Nothing here writes: storing and reviewing candidates is the
people asset's and the review workflow's business.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg

from costudy_pipelines.lib.people.features import (
    FEATURES_HEADER,
    IdentitySource,
    features_query,
)

if TYPE_CHECKING:  # imported by a matching run only: loading the definitions does not pay ~0.1 s
    import duckdb
    import numpy as np

DEFAULT_THRESHOLD = 0.9
DEFAULT_MAX_BLOCK_SIZE = 50  # users sharing one blocking key; larger blocks are skipped
DEFAULT_MAX_GROUP_SIZE = 4  # users in one person: bounds the prior from above
MIN_TRAINING_PAIRS = 50  # fewer compared pairs: no model to fit, nothing proposed
MIN_FEATURE_PAIRS = 20  # compared pairs with the feature on both sides, to learn its weight
EM_ITERATIONS = 200
EM_TOLERANCE = 1e-7
EM_STARTS = (0.9, 0.5, 0.1, 0.01, 0.001)  # starting priors; each clipped to the bounds
PSEUDO_COUNT = 0.5  # smooths every level's count: no probability of exactly 0 or 1
MAX_WEIGHT = 16.0  # bits, per feature: no single feature decides alone beyond this
MAX_TF_ADJUSTMENT = 4.0  # bits a rare (or common) value adds to (or takes from) agreement
FETCH_ROWS = 20_000
DUCKDB_MEMORY_LIMIT = "1200MB"  # beyond it DuckDB spills to the scratch folder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Comparison:
    """A feature as the model compares it: SQL levels over a pair (l, r), best first. A pair
    where `null` holds has no evidence either way; one no level matches is level 0 (else)."""

    name: str
    null: str
    levels: tuple[tuple[str, str], ...]  # (description, SQL condition), best first
    tf_column: str | None = None  # the value whose frequency adjusts the best level


def _near(column: str, typos: int = 1) -> str:
    return f"damerau_levenshtein(l.{column}, r.{column}) <= {typos}"


def _name(column: str) -> Comparison:
    return Comparison(
        column,
        f"l.{column} is null or r.{column} is null",
        (
            ("exact", f"l.{column} = r.{column}"),
            (
                "one typo",
                f"{_near(column)} or jaro_winkler_similarity(l.{column}, r.{column}) >= 0.92",
            ),
            ("similar", f"jaro_winkler_similarity(l.{column}, r.{column}) >= 0.8"),
        ),
        tf_column=column,
    )


COMPARISONS = (
    _name("first_name"),
    _name("last_name"),
    Comparison(
        "email",  # the whole local part, else the residual: what it says beyond the name
        "l.email_local <> r.email_local and (l.email_residual is null or r.email_residual is null)",
        (
            ("same local part", "l.email_local = r.email_local"),
            ("same residual", "l.email_residual = r.email_residual"),
            # near: a typo in a word ("zoey" for "zoe1"), or one residual starting or ending
            # the other ("toreberg8bp" and "8bp": a typo in the name kept it in). Never one
            # character off in digits: "smith84" and "smith85" are two people.
            (
                "residual a typo apart, or starting or ending the other",
                "(regexp_full_match(l.email_residual || r.email_residual, '[a-z]+') "
                "and least(length(l.email_residual), length(r.email_residual)) >= 4 "
                f"and {_near('email_residual')}) or (least(length(l.email_residual), "
                "length(r.email_residual)) >= 3 and (starts_with(l.email_residual, "
                "r.email_residual) or starts_with(r.email_residual, l.email_residual) or "
                "ends_with(l.email_residual, r.email_residual) or "
                "ends_with(r.email_residual, l.email_residual)))",
            ),
        ),
    ),
    Comparison(
        "email_domain",
        "l.email_domain is null or r.email_domain is null",
        (("same domain", "l.email_domain = r.email_domain"),),
        tf_column="email_domain",
    ),
    Comparison(
        "phone",
        "l.phone is null or r.phone is null",
        (("exact", "l.phone = r.phone"), ("one typo", _near("phone"))),
    ),
    Comparison(  # no typo level: usernames are picked, not typed ("ann84" and "ann85" differ)
        "username",
        "l.username is null or r.username is null",
        (("exact", "l.username = r.username"),),
    ),
    Comparison(
        "birth_date",
        "l.birth_date is null or r.birth_date is null",
        (
            ("exact", "l.birth_date = r.birth_date"),
            (
                "one typo, or day and month swapped",
                f"{_near('birth_date')} or "
                "l.birth_date = left(r.birth_date, 4) || right(r.birth_date, 2) "
                "|| substr(r.birth_date, 5, 2)",
            ),
            ("same year", "left(l.birth_date, 4) = left(r.birth_date, 4)"),
        ),
    ),
    Comparison(
        "locality",  # city and postcode together: one place, not two pieces of evidence
        "(l.postcode is null or r.postcode is null) and (l.city is null or r.city is null)",
        (
            ("same postcode and city", "l.postcode = r.postcode and l.city = r.city"),
            ("same postcode or city", "l.postcode = r.postcode or l.city = r.city"),
            (
                "postcode or city within one typo",
                f"{_near('postcode')} or jaro_winkler_similarity(l.city, r.city) >= 0.9",
            ),
        ),
    ),
    Comparison(
        "address",
        "l.address is null or r.address is null",
        (
            ("exact", "l.address = r.address"),
            (
                "similar",
                "jaro_winkler_similarity(l.address, r.address) >= 0.9 or "
                "len(list_intersect(l.address_tokens, r.address_tokens)) * 2 >= "
                "greatest(len(l.address_tokens), len(r.address_tokens))",
            ),
        ),
    ),
)
FEATURES = tuple(comparison.name for comparison in COMPARISONS)
STRONG_FEATURES = ("birth_date", "phone")
# Evidence too weak to propose a pair on alone: with nothing else kept, nothing is scored.
SUPPORTING_FEATURES = frozenset({"email_domain"})

# Equi-joins that select the pairs to compare: a pair is compared when any rule joins it.
BLOCKING_RULES: tuple[tuple[str, ...], ...] = (
    ("phone",),
    ("username",),
    ("email_residual",),
    ("email_local",),
    ("email_tail",),  # the local part's last token: "67k" of kim.pen.67k and pen_67k
    ("first_name", "last_name"),
    ("name_key",),  # first and last name in either order
    ("first_head", "last_head"),
    ("first_head", "last_tail"),
    ("first_tail", "last_head"),
    ("first_tail", "last_tail"),
    ("birth_date", "last_head"),
    ("birth_date", "first_head"),
    ("birth_date", "postcode"),
    ("postcode", "last_head"),
    ("postcode", "first_head"),
)

# DuckDB: raw features (read from the CSV) -> the columns the model compares.
PREPARE_SQL = r"""
create table people_features as
with folded as (
    select
        row_number() over () :: integer as rid,
        id as unique_id,
        lower(trim(email)) as email,
        nullif(lower(trim(username)), '') as username,
        regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g') as phone_digits,
        lower(strip_accents(trim(coalesce(name, '')))) as name0,
        nullif(regexp_replace(lower(strip_accents(coalesce(first_name, ''))),
                              '[^\p{L}\p{N}]', '', 'g'), '') as first0,
        nullif(regexp_replace(lower(strip_accents(coalesce(last_name, ''))),
                              '[^\p{L}\p{N}]', '', 'g'), '') as last0,
        trim(coalesce(birth_date, '')) as birth0,
        nullif(trim(regexp_replace(regexp_replace(lower(strip_accents(coalesce(city, ''))),
               '[^\p{L}\p{N}]+', ' ', 'g'), '\s+', ' ', 'g')), '') as city,
        nullif(upper(regexp_replace(coalesce(postcode, ''), '[^\p{L}\p{N}]', '', 'g')), '')
            as postcode,
        nullif(trim(regexp_replace(lower(strip_accents(coalesce(address, ''))),
               '[^\p{L}\p{N}]+', ' ', 'g')), '') as address
    from raw_features
),
named as (
    select
        *,
        -- "Lee, Ann" -> "ann lee"; punctuation inside a name (O'Brien, Jean-Luc) dropped
        string_split(trim(regexp_replace(regexp_replace(
            case when contains(name0, ',')
                 then split_part(name0, ',', 2) || ' ' || split_part(name0, ',', 1)
                 else name0 end,
            '[^\p{L}\p{N}\s]+', '', 'g'), '\s+', ' ', 'g')), ' ') as name_tokens,
        split_part(email, '@', 1) as email_local,
        nullif(split_part(email, '@', 2), '') as email_domain
    from folded
),
email_words as (
    select
        *,
        list_filter(regexp_split_to_array(email_local, '[^a-z0-9]+'),
                    lambda t: regexp_full_match(t, '[a-z]{2,}')) as local_words,
        regexp_split_to_array(email_local, '[^a-z0-9]+')[-1] as local_tail
    from named
),
split as (
    select
        *,
        case when first0 is not null or last0 is not null then first0
             when name_tokens[1] <> '' then name_tokens[1]
             when len(local_words) >= 2 then local_words[1] end as first_name,
        case when first0 is not null or last0 is not null then last0
             when name_tokens[1] <> '' then
                  case when len(name_tokens) > 1 then name_tokens[-1] end
             when len(local_words) >= 2 then local_words[-1] end as last_name,
        regexp_replace(email_local, '[^a-z0-9]', '', 'g') as email_stem,
        coalesce(
            strftime(try_strptime(
                case when regexp_matches(birth0, '^\d{4}-\d{2}-\d{2}') then left(birth0, 10)
                     else birth0 end,
                ['%Y-%m-%d', '%Y%m%d', '%d/%m/%Y', '%d.%m.%Y', '%Y/%m/%d', '%d-%m-%Y']),
                '%Y%m%d'),
            case when regexp_full_match(regexp_replace(birth0, '[^0-9]', '', 'g'), '\d{8}')
                 then regexp_replace(birth0, '[^0-9]', '', 'g') end) as birth_date
    from email_words
),
typed as (
    -- names as an email spells them: letters a keyboard has ("Nørgaard" -> "nrgaard")
    select *,
        regexp_replace(first_name, '[^a-z0-9]', '', 'g') as first_typed,
        regexp_replace(last_name, '[^a-z0-9]', '', 'g') as last_typed
    from split
),
residual0 as (
    select
        *,
        -- the local part less the user's own name: what it says beyond the name
        replace(replace(replace(replace(email_stem,
            coalesce(first_typed || last_typed, chr(0)), ''),
            coalesce(last_typed || first_typed, chr(0)), ''),
            case when length(last_typed) >= 2 then last_typed else chr(0) end, ''),
            case when length(first_typed) >= 2 then first_typed else chr(0) end, '') as rest0
    from typed
),
residual as (
    -- "j.smith84" for John Smith: the initial went with the name, "84" is what is left
    select *,
        case when left(rest0, 1) = left(first_name, 1) and regexp_matches(rest0, '^.\d')
             then substr(rest0, 2) else rest0 end as rest
    from residual0
)
select
    rid,
    unique_id,
    email,
    email_local,
    email_domain,
    case when length(rest) >= 2 or regexp_matches(rest, '\d') then rest end as email_residual,
    -- a last token with a digit ("67k", "smith84"): an identifier, unlike a bare surname
    case when regexp_matches(local_tail, '\d') then local_tail end as email_tail,
    first_name,
    last_name,
    case when first_name is not null and last_name is not null
         then array_to_string(list_sort([first_name, last_name]), ' ') end as name_key,
    left(first_name, 3) as first_head,
    right(first_name, 3) as first_tail,
    left(last_name, 3) as last_head,
    right(last_name, 3) as last_tail,
    username,
    case when length(phone_digits) >= 7 then right(phone_digits, 10) end as phone,
    birth_date,
    city,
    postcode,
    address,
    string_split(address, ' ') as address_tokens
from residual
"""


@dataclass(frozen=True, slots=True)
class MatchCandidate:
    user_a: UUID  # users.id, always user_a < user_b (PostgreSQL's uuid order)
    user_b: UUID
    probability: float  # match probability 0..1
    agreed: tuple[str, ...]  # feature names that agreed, e.g. ("first_name", "phone")
    disagreed: tuple[str, ...]  # feature names that disagreed
    # an identifier beyond the name agrees exactly (CORROBORATING): automatic acceptance
    # takes nothing less, since namesakes share every name-derived piece of evidence
    corroborated: bool = False


@dataclass(frozen=True, slots=True)
class UserIdentity:
    """A user's strong features as compared (normalised): what automatic acceptance and the
    people check hold persons to."""

    user_id: UUID
    birth_date: str | None
    phone: str | None


@dataclass(frozen=True)
class MatchSettings:
    threshold: float = DEFAULT_THRESHOLD
    max_block_size: int = DEFAULT_MAX_BLOCK_SIZE
    max_group_size: int = DEFAULT_MAX_GROUP_SIZE


@dataclass
class MatchRun:
    """What one scoring did, for an asset's metadata."""

    users: int = 0
    compared_pairs: int = 0
    candidates: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    pairs_by_rule: dict[str, int] = field(default_factory=dict)
    skipped_blocks: dict[str, int] = field(default_factory=dict)  # oversized keys per rule
    prior: float | None = None  # share of matches among the compared pairs, as fitted
    prior_bounds: tuple[float, float] | None = None
    # feature -> why it was left out (no data, does not separate); scoring never uses it
    left_out: dict[str, str] = field(default_factory=dict)
    weights: dict[str, dict[str, float]] = field(default_factory=dict)  # feature -> level: bits
    # why nothing was proposed (too few pairs, no feature left), None when scored
    not_scored: str | None = None


@dataclass
class Model:
    """A fitted Fellegi-Sunter model: per kept feature, the match weight (bits) of each level
    (0 = else, 1.. = the comparison's levels, worst to best), and the prior."""

    prior: float
    weights: dict[str, list[float]]
    tf_features: tuple[str, ...]

    def score_sql(self) -> str:
        """SQL over a `gammas` row joined with both users' features: total weight (bits)."""
        terms = [f"{math.log2(self.prior / (1 - self.prior))!r}"]
        terms += [f"({_weight_sql(name, levels, self)})" for name, levels in self.weights.items()]
        return f"({' + '.join(terms)})::double"


def _weight_sql(name: str, levels: list[float], model: Model) -> str:
    cases = " ".join(f"when {level} then {weight!r}" for level, weight in enumerate(levels))
    weight = f"case g.{name} {cases} else 0 end"
    if name in model.tf_features:
        top = len(levels) - 1
        weight += f" + case when g.{name} = {top} then coalesce(l.{name}_tf, 0) else 0 end"
    return weight


def find_candidates(
    conn: psycopg.Connection,
    identity: Sequence[IdentitySource] = (),
    *,
    settings: MatchSettings | None = None,
) -> list[MatchCandidate]:
    """Every pair of users whose match probability is at least the threshold."""
    settings = settings or MatchSettings()
    with score_warehouse(conn, identity, settings=settings) as scoring:
        return list(scoring.candidates(settings.threshold))


@contextlib.contextmanager
def score_warehouse(
    conn: psycopg.Connection,
    identity: Sequence[IdentitySource] = (),
    *,
    settings: MatchSettings | None = None,
    run: MatchRun | None = None,
) -> Iterator[Scoring]:
    """The warehouse's users scored; the features declared by `identity` (features.py)."""
    run = run if run is not None else MatchRun()
    with tempfile.TemporaryDirectory(prefix="costudy-matching-") as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        features = folder / "features.csv"
        with features.open("wb") as out, conn.cursor() as cursor:
            query = psycopg.sql.SQL("copy ({}) to stdout (format csv, header)").format(
                features_query(identity)
            )
            with cursor.copy(query) as rows:
                for block in rows:
                    out.write(block)
        run.seconds["read_features"] = round(time.perf_counter() - started, 3)
        with score_features_csv(features, settings=settings, run=run, scratch=folder) as scoring:
            yield scoring


@contextlib.contextmanager
def score_features_csv(
    path: Path,
    *,
    settings: MatchSettings | None = None,
    run: MatchRun | None = None,
    scratch: Path | None = None,
) -> Iterator[Scoring]:
    """Score users given as CSV (header: `id`, `email` and any of IDENTITY_FEATURES, as the
    features query writes it). The benchmark feeds data sets through here directly."""
    run = run if run is not None else MatchRun()
    settings = settings or MatchSettings()
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute("set threads = 2")
        con.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        if scratch is not None:
            con.execute("set temp_directory = ?", [str(scratch / "duckdb")])
        started = time.perf_counter()
        _read_features(con, path)
        con.execute(PREPARE_SQL)
        con.execute("drop table raw_features")
        [(count,)] = con.execute("select count(*) from people_features").fetchall()
        run.users = int(count)
        run.seconds["prepare"] = round(time.perf_counter() - started, 3)
        scoring = Scoring(con, run, settings)
        scoring.fit()
        yield scoring
    finally:
        con.close()


def _read_features(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """raw_features: the CSV's columns of FEATURES_HEADER as text, a column it lacks null."""
    [header] = con.execute(
        "select columns from sniff_csv(?, header = true)", [str(path)]
    ).fetchone() or [[]]
    present = [column["name"] for column in header]  # in the file's order
    if not {"id", "email"} <= set(present):
        raise ValueError(f"{path}: features need the columns id and email, found {present}")
    types = dict.fromkeys(present, "varchar")
    columns = ", ".join(
        f'"{name}"' if name in present else f'null::varchar as "{name}"' for name in FEATURES_HEADER
    )
    con.execute(
        f"create table raw_features as select {columns} from read_csv(?, header = true, "
        "columns = $types, quote = '\"', escape = '\"')".replace("$types", _struct(types)),
        [str(path)],
    )


def _struct(types: dict[str, str]) -> str:
    """A DuckDB struct literal of column types (names from the file's header, quoted)."""
    fields = ", ".join(
        "'{}': '{}'".format(name.replace("'", "''"), kind) for name, kind in types.items()
    )
    return "{" + fields + "}"


class Scoring:
    """The users in DuckDB, the pairs compared and the model fitted on them."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run: MatchRun, settings: MatchSettings):
        self.con = con
        self.run = run
        self.settings = settings
        self.model: Model | None = None

    def fit(self) -> None:
        run = self.run
        if run.users < 2:
            run.not_scored = f"{run.users} user(s): nothing to compare"
            return
        started = time.perf_counter()
        self._block()
        run.seconds["block"] = round(time.perf_counter() - started, 3)
        if run.compared_pairs < MIN_TRAINING_PAIRS:
            run.not_scored = (
                f"{run.compared_pairs} compared pairs: too few to fit a model without labels "
                f"(at least {MIN_TRAINING_PAIRS})"
            )
            return
        started = time.perf_counter()
        self._compare()
        run.seconds["compare"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        self.model = self._train()
        run.seconds["train"] = round(time.perf_counter() - started, 3)

    def _block(self) -> None:
        """`compared`: every pair (l < r) some blocking rule joins, each rule skipping keys
        shared by more than max_block_size users."""
        con, cap = self.con, self.settings.max_block_size
        con.execute("create table compared (l integer, r integer)")
        for rule in BLOCKING_RULES:
            name = "+".join(rule)
            keys = ", ".join(rule)
            present = " and ".join(f"{column} is not null" for column in rule)
            con.execute(
                f"create or replace temp table block_keys as select rid, {keys}, "
                f"count(*) over (partition by {keys}) as size from people_features "
                f"where {present}"
            )
            [(skipped,)] = con.execute(
                f"select count(distinct ({keys})) from block_keys where size > {cap}"
            ).fetchall()
            joined = " and ".join(f"a.{column} = b.{column}" for column in rule)
            [(pairs,)] = con.execute(
                f"insert into compared select a.rid, b.rid from block_keys a join block_keys b "
                f"on {joined} and a.rid < b.rid where a.size <= {cap}"
            ).fetchall()
            self.run.pairs_by_rule[name] = int(pairs)
            if skipped:
                self.run.skipped_blocks[name] = int(skipped)
        con.execute("drop table block_keys")
        con.execute("create or replace table compared as select distinct l, r from compared")
        [(count,)] = con.execute("select count(*) from compared").fetchall()
        self.run.compared_pairs = int(count)

    def _compare(self) -> None:
        """`gammas`: each compared pair's level per feature (-1: missing on a side)."""
        levels = ", ".join(f"{_gamma_sql(c)} :: tinyint as {c.name}" for c in COMPARISONS)
        self.con.execute(
            f"create table gammas as select c.l, c.r, {levels} from compared c "
            "join people_features l on l.rid = c.l join people_features r on r.rid = c.r"
        )
        self.con.execute("drop table compared")

    def _train(self) -> Model | None:
        import numpy as np

        run = self.run
        names = [c.name for c in COMPARISONS]
        rows = self.con.execute(
            f"select {', '.join(names)}, count(*) from gammas group by all"
        ).fetchall()
        patterns = np.array([row[:-1] for row in rows], dtype=np.int64)
        counts = np.array([row[-1] for row in rows], dtype=np.float64)
        sizes = {c.name: len(c.levels) + 1 for c in COMPARISONS}
        kept = []
        for index, comparison in enumerate(COMPARISONS):
            present = int(counts[patterns[:, index] >= 0].sum())
            if present < MIN_FEATURE_PAIRS:
                run.left_out[comparison.name] = (
                    f"no data: on both sides of {present} compared pairs "
                    f"(at least {MIN_FEATURE_PAIRS} to learn from)"
                )
            else:
                kept.append(index)
        pairs = float(counts.sum())
        # at least one match; at most every user in a person of max_group_size users
        most = run.users * (self.settings.max_group_size - 1) / 2
        bounds = (1.0 / pairs, min(1 - 1.0 / pairs, max(1.0, most) / pairs))
        run.prior_bounds = (round(bounds[0], 8), round(bounds[1], 8))
        while kept:
            fit = _best_fit(patterns[:, kept], counts, [sizes[names[i]] for i in kept], bounds)
            prior, m, u = fit.prior, fit.m, fit.u
            separating = fit.separating()
            if len(separating) == len(kept):
                break
            for position, index in enumerate(kept):
                if position not in separating:
                    run.left_out[names[index]] = (
                        "does not separate matches from non-matches: level shares among "
                        f"matches {np.round(m[position], 3).tolist()}, among non-matches "
                        f"{np.round(u[position], 3).tolist()} (else first)"
                    )
            kept = [kept[position] for position in separating]
        if not {names[index] for index in kept} - SUPPORTING_FEATURES:
            run.not_scored = (
                "no identifying feature separates matches from non-matches "
                f"(kept only {[names[index] for index in kept]}; see left_out)"
            )
            return None
        weights = {
            names[index]: [
                # a level no compared pair reached says nothing either way
                float(np.clip(math.log2(m[p][level] / u[p][level]), -MAX_WEIGHT, MAX_WEIGHT))
                if counts[patterns[:, index] == level].sum() > 0
                else 0.0
                for level in range(sizes[names[index]])
            ]
            for p, index in enumerate(kept)
        }
        run.prior = round(prior, 8)
        run.weights = {
            name: {_level_name(name, level): round(w, 2) for level, w in enumerate(levels)}
            for name, levels in weights.items()
        }
        tf_features = tuple(
            c.name for c in COMPARISONS if c.tf_column is not None and c.name in weights
        )
        self._term_frequencies(tf_features)
        return Model(prior, weights, tf_features)

    def _term_frequencies(self, features: tuple[str, ...]) -> None:
        """Per user, `<feature>_tf`: log2(u_exact / tf(value)), bounded: agreeing on a value
        rarer than average counts for more, on a commoner one for less."""
        for name in features:
            self.con.execute(
                f"""
                create or replace temp table tf as
                with counts as (
                    select {name} as value, count(*)::double as n from people_features
                    where {name} is not null group by all
                ),
                shares as (select value, n / sum(n) over () as tf from counts)
                select value, least({MAX_TF_ADJUSTMENT}, greatest(-{MAX_TF_ADJUSTMENT},
                    log2((select sum(tf * tf) from shares) / tf))) as adjustment
                from shares
                """
            )
            self.con.execute(f"alter table people_features add column {name}_tf double")
            self.con.execute(
                f"update people_features p set {name}_tf = tf.adjustment from tf "
                f"where tf.value = p.{name}"
            )

    def scored_pairs(self, threshold: float = 0.0) -> Iterator[tuple[str, str, float]]:
        """(user id, user id, probability) of every compared pair at or above `threshold`:
        the benchmark's precision/recall curve."""
        if self.model is None:
            return
        cursor = self.con.cursor()
        cursor.execute(self._pairs_query("score"), [_bits(threshold)])
        while batch := cursor.fetchmany(FETCH_ROWS):
            for left, right, score in batch:
                yield left, right, _probability(score)

    def _pairs_query(self, columns: str) -> str:
        """The compared pairs whose score is at least the parameter, with `columns`."""
        assert self.model is not None
        return (
            f"select l.unique_id, r.unique_id, {columns} from ("
            f"select g.*, {self.model.score_sql()} as score from gammas g "
            "join people_features l on l.rid = g.l) g "
            "join people_features l on l.rid = g.l join people_features r on r.rid = g.r "
            "where g.score >= ?"
        )

    def candidates(self, threshold: float | None = None) -> Iterator[MatchCandidate]:
        """Every pair at or above `threshold` (the settings' by default), with the features
        whose weight was for it and against it."""
        model, run = self.model, self.run
        if model is None:
            return
        threshold = self.settings.threshold if threshold is None else threshold
        started = time.perf_counter()
        names = list(model.weights)
        columns = ", ".join(f"({_weight_sql(n, model.weights[n], model)}) as w_{n}" for n in names)
        cursor = self.con.cursor()
        query = self._pairs_query(f"score, {_corroborated_sql(names)}, {columns}")
        cursor.execute(query, [_bits(threshold)])
        while batch := cursor.fetchmany(FETCH_ROWS):
            for left, right, score, corroborated, *weights in batch:
                a, b = sorted((UUID(left), UUID(right)))
                pairs = list(zip(names, weights, strict=True))
                agreed = tuple(name for name, weight in pairs if weight > 0)
                disagreed = tuple(name for name, weight in pairs if weight < 0)
                run.candidates += 1
                yield MatchCandidate(
                    a, b, _probability(score), agreed, disagreed, bool(corroborated)
                )
        run.seconds["predict"] = round(time.perf_counter() - started, 3)

    def identities(self) -> Iterator[UserIdentity]:
        """Every user's strong features, normalised as compared."""
        cursor = self.con.cursor()
        cursor.execute("select unique_id, birth_date, phone from people_features")
        while batch := cursor.fetchmany(FETCH_ROWS):
            for user_id, birth_date, phone in batch:
                yield UserIdentity(UUID(user_id), birth_date, phone)


# An identifier beyond the name, agreeing exactly (feature, its level): what automatic
# acceptance asks for besides the probability. Names (and an email made of the name alone)
# are the evidence two namesakes share; a near email or a similar address is not exact.
CORROBORATING = {"phone": 2, "username": 1, "birth_date": 3, "address": 2, "locality": 3}


def _corroborated_sql(features: list[str]) -> str:
    """SQL: whether a pair agrees exactly on an identifier beyond the name (kept features)."""
    terms = [f"g.{name} = {level}" for name, level in CORROBORATING.items() if name in features]
    if "email" in features:  # the same local part or residual, holding more than the name
        terms.append("(g.email >= 2 and l.email_residual is not null)")
    return f"({' or '.join(terms) or 'false'}) as corroborated"


def _gamma_sql(comparison: Comparison) -> str:
    """The level of a pair: -1 missing, len(levels) for the best, ..., 0 for none."""
    best = len(comparison.levels)
    cases = " ".join(
        f"when {condition} then {best - rank}"
        for rank, (_, condition) in enumerate(comparison.levels)
    )
    return f"case when {comparison.null} then -1 {cases} else 0 end"


def _level_name(feature: str, level: int) -> str:
    comparison = next(c for c in COMPARISONS if c.name == feature)
    if level == 0:
        return "else"
    return comparison.levels[len(comparison.levels) - level][0]


def _bits(probability: float) -> float:
    """The total weight (log2 odds) at `probability`."""
    if probability <= 0:
        return -math.inf
    if probability >= 1:
        return math.inf
    return math.log2(probability / (1 - probability))


def _probability(bits: float) -> float:
    return 1.0 / (1.0 + 2.0 ** (-bits)) if bits > -1000 else 0.0


@dataclass
class _Fit:
    prior: float
    m: list[np.ndarray]  # per feature, the level probabilities among matches
    u: list[np.ndarray]  # and among non-matches
    log_likelihood: float

    def separating(self) -> list[int]:
        """The features that point the right way: full agreement likelier among matches than
        among non-matches, and no agreement likelier among non-matches."""
        return [
            f for f, (m, u) in enumerate(zip(self.m, self.u, strict=True))
            if m[-1] > u[-1] and m[0] < u[0]
        ]  # fmt: skip


def _best_fit(
    patterns: np.ndarray, counts: np.ndarray, sizes: list[int], bounds: tuple[float, float]
) -> _Fit:
    """EM from several starting priors (EM finds a local optimum, and with few features a
    wrong one: a "match" class of pairs that disagree): of the fits, the one in which most
    separates: the fit in which most features separate, the likeliest of those."""
    fits = [_em(patterns, counts, sizes, bounds, start) for start in EM_STARTS]
    return max(fits, key=lambda fit: (len(fit.separating()), fit.log_likelihood))


def _em(
    patterns: np.ndarray,
    counts: np.ndarray,
    sizes: list[int],
    bounds: tuple[float, float],
    start_prior: float,
) -> _Fit:
    """Expectation maximisation of a two-class latent model over comparison patterns (one row
    per distinct pattern, `counts` pairs each; -1 = missing, ignored): the prior (within
    `bounds`), and per feature the level probabilities among matches and non-matches."""
    import numpy as np

    features = patterns.shape[1]
    present = [patterns[:, f] >= 0 for f in range(features)]
    u = []
    m = []
    for f, size in enumerate(sizes):
        observed = np.bincount(patterns[present[f], f], weights=counts[present[f]], minlength=size)
        u.append((observed + PSEUDO_COUNT) / (observed.sum() + PSEUDO_COUNT * size))
        start = np.full(size, 0.1 / max(1, size - 1))
        start[-1] = 0.9  # matches mostly agree: a start that names the match class
        m.append(start)
    prior = float(np.clip(start_prior, *bounds))
    for _ in range(EM_ITERATIONS):
        log_m, log_u = _log_likelihoods(patterns, present, m, u)
        log_odds = math.log(prior / (1 - prior)) + log_m - log_u
        match = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
        matched = counts * match
        unmatched = counts - matched
        new_prior = float(np.clip(matched.sum() / counts.sum(), *bounds))
        new_m, new_u = [], []
        for f, size in enumerate(sizes):
            levels = patterns[present[f], f]
            mm = np.bincount(levels, weights=matched[present[f]], minlength=size) + PSEUDO_COUNT
            uu = np.bincount(levels, weights=unmatched[present[f]], minlength=size) + PSEUDO_COUNT
            new_m.append(mm / mm.sum())
            new_u.append(uu / uu.sum())
        change = max(
            abs(new_prior - prior),
            *(float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True)),
            *(float(np.abs(a - b).max()) for a, b in zip(new_u, u, strict=True)),
        )
        prior, m, u = new_prior, new_m, new_u
        if change < EM_TOLERANCE:
            break
    log_m, log_u = _log_likelihoods(patterns, present, m, u)
    mixture = np.logaddexp(math.log(prior) + log_m, math.log(1 - prior) + log_u)
    return _Fit(prior, m, u, float((counts * mixture).sum()))


def _log_likelihoods(
    patterns: np.ndarray, present: list[np.ndarray], m: list[np.ndarray], u: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per pattern, log P(pattern | match) and log P(pattern | non-match); missing ignored."""
    import numpy as np

    log_m = np.zeros(len(patterns))
    log_u = np.zeros(len(patterns))
    for f, has in enumerate(present):
        levels = patterns[has, f]
        log_m[has] += np.log(m[f][levels])
        log_u[has] += np.log(u[f][levels])
    return log_m, log_u


def describe(run: MatchRun) -> dict[str, Any]:
    """The run as plain data (an asset's metadata, a benchmark's JSON)."""
    return {
        "users": run.users,
        "compared_pairs": run.compared_pairs,
        "candidates": run.candidates,
        "pairs_by_rule": run.pairs_by_rule,
        "skipped_blocks": run.skipped_blocks,
        "prior": run.prior,
        "prior_bounds": list(run.prior_bounds) if run.prior_bounds else None,
        "left_out": run.left_out,
        "weights": run.weights,
        "not_scored": run.not_scored,
        "seconds": run.seconds,
    }
