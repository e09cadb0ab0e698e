"""Probable duplicates: pairs of users (one per email) that are probably one person.

    with pg.connect(url, source="WAREHOUSE_DB_URL") as conn:
        for candidate in find_candidates(conn):
            candidate.user_a, candidate.user_b, candidate.probability, candidate.agreed

How a pair is scored (README, "How candidates are scored"):

1. Features, one set-based query (FEATURES_SQL): every user's name and username (the users
   table's winners; for users no ranked source names, the name on their website events or
   course enrollments and orders), email, and a phone from the source rows that carry one
   (Whop payments' customer_phone, website demo requests, GoHighLevel contacts, in that
   order of trust).
   Copied out of PostgreSQL as CSV and into an in-memory DuckDB, where they are normalised
   (PREPARE_SQL): names folded to lower-case ASCII where possible, "Last, First" turned
   round, split into a first and a last token; the email's local part, its letters and
   digits only ("stem"), its sorted tokens and its last token ("tail"); phone digits only.
2. Pairs to score come from blocking rules (BLOCKING_RULES), each an equi-join, so the work
   grows with the size of the blocks, not with users squared: same phone, same username,
   same email stem, same email tail, same first name and last-name letters, same last name
   and first-name letters (the letter sets survive a swapped, doubled or dropped repeated
   letter).
3. A Fellegi-Sunter model (Splink on DuckDB) trained without labels: u probabilities from
   random pairs, m probabilities by expectation maximisation on pairs blocked by phone and
   then by name, and the prior from pairs that agree on phone, username or email stem.
   Names get term-frequency adjustments: agreeing on a rare name counts for more than on a
   common one.
4. Every pair at or above the threshold is a candidate, with the features whose evidence
   was for it (agreed: match weight > 0) and against it (disagreed: < 0); a feature missing
   on either side is in neither.

Two users never share an email (the warehouse keys users by email), so every candidate is a
pair of different addresses. Nothing here writes: storing and reviewing candidates is the
people asset's and the review workflow's business.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
import psycopg

DEFAULT_THRESHOLD = 0.9
SEED = 16  # random sampling of u: the same warehouse always gives the same model
U_MAX_PAIRS = 2e6
EM_MAX_PAIRS = 2e6
EM_TRAINING_RULES = (
    "l.phone = r.phone",
    "l.first_name = r.first_name and l.last_name = r.last_name",
)
FETCH_ROWS = 20_000
# Feature name -> Splink's comparison column (what agreed / disagreed list).
FEATURES = ("first_name", "last_name", "username", "phone", "email")
DUCKDB_MEMORY_LIMIT = "1200MB"  # beyond it DuckDB spills to the scratch folder

logger = logging.getLogger(__name__)

FEATURES_SQL = """
with phones as (
    select distinct user_id, raw->>'customer_phone' as phone, 1 as trust
    from whop_payments
    where deleted_at is null and raw->>'customer_phone' is not null
    union all
    select distinct user_id, raw->>'phone', 2
    from website_people
    where deleted_at is null and raw->>'phone' is not null
    union all
    select distinct user_id, phone, 3
    from ghl_contacts
    where deleted_at is null and phone is not null
),
best_phone as (
    select distinct on (user_id) user_id, phone
    from phones
    order by user_id, trust, phone
),
-- names the load engine does not rank (the website's and the course platform's validators
-- read no name), for users no ranked source names
raw_names as (
    select user_id, raw->>'name' as name, 1 as trust
    from website_people
    where deleted_at is null and raw->>'name' <> ''
    union all
    select user_id, raw->>'user_name', 2
    from course_enrollments
    where deleted_at is null and raw->>'user_name' <> ''
    union all
    select user_id, raw->>'user_name', 2
    from course_orders
    where deleted_at is null and raw->>'user_name' <> ''
),
best_raw_name as (
    select distinct on (user_id) user_id, name
    from raw_names
    order by user_id, trust, name
)
select u.id, u.email, coalesce(u.name, n.name) as name, u.username, p.phone
from users u
left join best_phone p on p.user_id = u.id
left join best_raw_name n on n.user_id = u.id
"""

# DuckDB: raw features (read from the CSV) -> the columns the model compares.
PREPARE_SQL = """
create table people_features as
with folded as (
    select
        id,
        lower(email) as email,
        nullif(lower(trim(username)), '') as username,
        nullif(regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g'), '') as phone,
        lower(strip_accents(trim(coalesce(name, '')))) as name0
    from raw_features
),
named as (
    select
        *,
        trim(regexp_replace(regexp_replace(
            case when contains(name0, ',')
                 then split_part(name0, ',', 2) || ' ' || split_part(name0, ',', 1)
                 else name0 end,
            '[^\\p{L}\\p{N}\\s]+', '', 'g'), '\\s+', ' ', 'g')) as name1,
        split_part(email, '@', 1) as email_local
    from folded
),
split as (
    select
        *,
        string_split(name1, ' ') as name_tokens,
        regexp_split_to_array(email_local, '[._+-]+') as email_tokens
    from named
)
select
    id as unique_id,
    nullif(name_tokens[1], '') as first_name,
    case when len(name_tokens) > 1 then name_tokens[-1] end as last_name,
    username,
    case when length(phone) >= 7 then phone end as phone,
    email_local,
    regexp_replace(email_local, '[^a-z0-9]', '', 'g') as email_stem,
    array_to_string(list_sort(email_tokens), ' ') as email_token_set,
    -- sorted distinct letters: the same after a swapped, doubled or dropped repeated letter
    nullif(array_to_string(list_sort(list_distinct(string_split(name_tokens[1], ''))), ''), '')
        as first_letters,
    case when len(name_tokens) > 1
         then array_to_string(list_sort(list_distinct(string_split(name_tokens[-1], ''))), '')
    end as last_letters,
    case when len(email_tokens) > 1 and length(email_tokens[-1]) >= 2
         then email_tokens[-1] end as email_tail
from split
"""


@dataclass(frozen=True, slots=True)
class MatchCandidate:
    user_a: UUID  # users.id, always user_a < user_b (PostgreSQL's uuid order)
    user_b: UUID
    probability: float  # match probability 0..1
    agreed: tuple[str, ...]  # feature names that agreed, e.g. ("first_name", "phone")
    disagreed: tuple[str, ...]  # feature names that disagreed


@dataclass
class MatchRun:
    """What one scoring did, for an asset's metadata."""

    users: int = 0
    candidates: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    # EM training rules that found no pairs, or too few (a small or phone-less warehouse):
    # their m probabilities stay Splink's defaults; with none trained, nothing is proposed
    untrained: list[str] = field(default_factory=list)


def find_candidates(
    conn: psycopg.Connection, *, threshold: float = DEFAULT_THRESHOLD
) -> list[MatchCandidate]:
    """Every pair of users whose match probability is at least `threshold`."""
    return list(iter_candidates(conn, threshold=threshold))


def iter_candidates(
    conn: psycopg.Connection,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    run: MatchRun | None = None,
) -> Iterator[MatchCandidate]:
    """find_candidates as a stream (constant memory on the Python side); `run` collects
    counts and stage timings as it goes."""
    run = run if run is not None else MatchRun()
    with tempfile.TemporaryDirectory(prefix="costudy-matching-") as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        features = folder / "features.csv"
        with features.open("wb") as out, conn.cursor() as cursor:
            copy = f"copy ({FEATURES_SQL}) to stdout (format csv, header)"
            with cursor.copy(copy) as rows:
                for block in rows:
                    out.write(block)
        run.seconds["read_features"] = round(time.perf_counter() - started, 3)
        yield from score_features_csv(features, threshold=threshold, run=run, scratch=folder)


def score_features_csv(
    path: Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    run: MatchRun | None = None,
    scratch: Path | None = None,
) -> Iterator[MatchCandidate]:
    """Score users given as CSV (header id,email,name,username,phone: FEATURES_SQL's
    output). The benchmark feeds synthetic users through here at sizes no sync reaches."""
    run = run if run is not None else MatchRun()
    con = duckdb.connect(":memory:")
    try:
        con.execute("set threads = 2")
        con.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        if scratch is not None:
            con.execute("set temp_directory = ?", [str(scratch / "duckdb")])
        started = time.perf_counter()
        con.execute(
            "create table raw_features as select * from read_csv(?, header = true, "
            "columns = {'id': 'varchar', 'email': 'varchar', 'name': 'varchar', "
            "'username': 'varchar', 'phone': 'varchar'})",
            [str(path)],
        )
        con.execute(PREPARE_SQL)
        con.execute("drop table raw_features")
        [(count,)] = con.execute("select count(*) from people_features").fetchall()
        run.users = int(count)
        run.seconds["prepare"] = round(time.perf_counter() - started, 3)
        if run.users < 2:
            return
        yield from _score(con, threshold, run)
    finally:
        con.close()


def _score(
    con: duckdb.DuckDBPyConnection, threshold: float, run: MatchRun
) -> Iterator[MatchCandidate]:
    from splink import DuckDBAPI, Linker
    from splink.internals.exceptions import EMTrainingException

    quiet = _quiet_splink()
    try:
        started = time.perf_counter()
        db_api = DuckDBAPI(connection=con)
        linker = Linker(db_api.register("people_features"), _settings(), log_level=None)
        training = linker.training
        training.estimate_probability_two_random_records_match(
            ["l.phone = r.phone", "l.username = r.username", "l.email_stem = r.email_stem"],
            recall=0.7,
        )
        training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=SEED)
        _bound_unseen_u(linker)
        for rule in EM_TRAINING_RULES:
            try:
                training.estimate_parameters_using_expectation_maximisation(
                    rule, max_pairs=EM_MAX_PAIRS
                )
            except (EMTrainingException, ValueError):
                # no pairs under the rule, or too few to estimate from (EM reaches a
                # probability of exactly 0 or 1, whose match weight is undefined)
                run.untrained.append(rule)
        run.seconds["train"] = round(time.perf_counter() - started, 3)
        if len(run.untrained) == len(EM_TRAINING_RULES):
            return  # no model without labels to score with: propose nothing, say why
        started = time.perf_counter()
        predictions = linker.inference.predict(
            threshold_match_probability=threshold, warning_mode="never"
        )
        run.seconds["predict"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        yield from _candidates(con, predictions.physical_name, run)
        run.seconds["collect"] = round(time.perf_counter() - started, 3)
    finally:
        _restore_splink(quiet)


def _bound_unseen_u(linker: Any) -> None:
    """A level no random pair reached (two strangers sharing a phone, a username or an
    email's last token) has no u estimate, and Splink would fall back to a default that
    makes the agreement nearly worthless. Not one in U_MAX_PAIRS random pairs: that bounds
    u from above, so use the bound (a conservative estimate, never a stronger one)."""
    for comparison in linker._settings_obj.comparisons:  # Splink has no public setter
        for level in comparison.comparison_levels:
            if not level.is_null_level and not level._u_is_trained:
                level.u_probability = 1 / U_MAX_PAIRS


def _candidates(
    con: duckdb.DuckDBPyConnection, table: str, run: MatchRun
) -> Iterator[MatchCandidate]:
    columns = ", ".join(_weight(feature) for feature in FEATURES)
    cursor = con.cursor()
    cursor.execute(f"select unique_id_l, unique_id_r, match_probability, {columns} from {table}")
    while batch := cursor.fetchmany(FETCH_ROWS):
        for left, right, probability, *weights in batch:
            a, b = sorted((UUID(left), UUID(right)))
            agreed = tuple(f for f, weight in zip(FEATURES, weights, strict=True) if weight > 0)
            disagreed = tuple(f for f, weight in zip(FEATURES, weights, strict=True) if weight < 0)
            run.candidates += 1
            yield MatchCandidate(a, b, float(probability), agreed, disagreed)


def _weight(feature: str) -> str:
    """SQL: the feature's match weight (log2 Bayes factor) in a pair: 0 where either side
    lacks it (Splink's null level carries no weight)."""
    tf = f" + coalesce(mw_tf_adj_{feature}, 0)" if feature in ("first_name", "last_name") else ""
    return f"mw_{feature}{tf}"


def _settings() -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    email = cl.CustomComparison(
        [
            cll.NullLevel("email_local"),
            cll.ExactMatchLevel("email_local"),
            cll.CustomLevel(
                "email_stem_l = email_stem_r or email_token_set_l = email_token_set_r",
                "same letters and digits, or same tokens rearranged",
            ),
            cll.CustomLevel("email_tail_l = email_tail_r", "same last token"),
            cll.ElseLevel(),
        ],
        output_column_name="email",
        comparison_description="the email's local part",
    )

    def name(column: str) -> Any:
        exact = cll.ExactMatchLevel(column, term_frequency_adjustments=True)
        return cl.CustomComparison(
            [
                cll.NullLevel(column),
                exact,
                cll.DamerauLevenshteinLevel(column, 1),  # one typo: dropped, doubled, swapped
                cll.JaroWinklerLevel(column, 0.88),
                cll.ElseLevel(),
            ],
            output_column_name=column,
        )

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            name("first_name"),
            name("last_name"),
            cl.ExactMatch("username"),
            cl.ExactMatch("phone"),
            email,
        ],
        blocking_rules_to_generate_predictions=[
            block_on("phone"),
            block_on("username"),
            block_on("email_stem"),
            block_on("email_tail"),
            block_on("first_name", "last_letters"),
            block_on("last_name", "first_letters"),
        ],
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=False,
        additional_columns_to_retain=["email_stem", "email_token_set", "email_tail"],
    )


def _quiet_splink() -> tuple[int, bool]:
    """Splink logs every SQL step at INFO and warns about its own defaults: keep it at
    ERROR (never on stdout) while scoring."""
    splink_logger = logging.getLogger("splink")
    previous = (splink_logger.level, splink_logger.propagate)
    splink_logger.setLevel(logging.ERROR)
    return previous


def _restore_splink(previous: tuple[int, bool]) -> None:
    splink_logger = logging.getLogger("splink")
    splink_logger.setLevel(previous[0])
    splink_logger.propagate = previous[1]
