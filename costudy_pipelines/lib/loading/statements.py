"""The set-based SQL of a sync session, composed once per session with psycopg.sql.

Values always travel as parameters; only identifiers (tables, columns from LoadSpec) are
composed, through sql.Identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from psycopg import sql

from costudy_pipelines.lib.loading.spec import KeyKind, LoadOptions, LoadSpec

STAGE = sql.Identifier("_sync_stage")
STAGE_USERS = sql.Identifier("_sync_stage_users")
SEEN = sql.Identifier("_sync_seen")
RECOMPUTE = sql.Identifier("_sync_recompute")  # users whose fields a won row no longer backs

# Columns of the per-chunk user candidates, in COPY order.
USER_CANDIDATE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("email", "text"),
    ("first_record", "text"),
    ("name", "text"),
    ("name_record", "text"),
    ("name_observed_at", "timestamptz"),
    ("username", "text"),
    ("username_record", "text"),
    ("username_observed_at", "timestamptz"),
)
USER_CANDIDATE_TYPES = tuple(sql_type for _, sql_type in USER_CANDIDATE_COLUMNS)
PROVENANCED_FIELDS = ("name", "username")
# What every source row offers its user (migration 005), staged after raw in this order.
CANDIDATE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("candidate_name", "text"),
    ("candidate_username", "text"),
    ("candidate_observed_at", "timestamptz"),
)


def _columns_ddl(columns: list[tuple[str, str]]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type))
        for name, sql_type in columns
    )


def _wins(field: str, current: str, candidate: str) -> sql.Composed:
    """Whether the candidate's value of `field` replaces the current one (SPEC §3.2).

    A value beats null; a higher-priority family beats a lower one; within one family a
    different value from a record at least as new wins. Undated never beats dated.
    """
    cur = sql.Identifier(current)
    cand = sql.Identifier(candidate)
    value = sql.Identifier(field)
    current_rank = sql.SQL(
        "coalesce(array_position(%(priority)s::text[], {cur}.{source}), %(unlisted)s)"
    ).format(cur=cur, source=sql.Identifier(f"{field}_source"))
    observed = sql.Identifier(f"{field}_observed_at")
    return sql.SQL(
        "({cand}.{value} is not null and ({cur}.{value} is null"
        " or %(rank)s < {current_rank}"
        " or (%(rank)s = {current_rank} and {cand}.{value} is distinct from {cur}.{value}"
        " and ({cur}.{observed} is null or {cand}.{observed} >= {cur}.{observed}))))"
    ).format(cand=cand, cur=cur, value=value, current_rank=current_rank, observed=observed)


def _any_wins(current: str, candidate: str) -> sql.Composed:
    return sql.SQL(" or ").join(_wins(f, current, candidate) for f in PROVENANCED_FIELDS)


# A statement as psycopg executes it: composed, or rendered (_rendered).
Query = sql.SQL | sql.Composed


@dataclass(frozen=True)
class SessionStatements:
    """Every statement a session runs for one LoadSpec, each rendered once (_rendered)."""

    create_temp: tuple[Query, ...]
    probe: Query
    truncate: Query
    copy_stage: Query
    stage_types: tuple[str, ...]
    copy_users: Query
    copy_seen: Query
    upsert_users: Query
    upsert_rows: Query
    index_seen: Query
    analyze_seen: Query
    count_live: Query  # live rows of the slice (the base of the delete share)
    any_live_covered: Query  # whether the session covers any live row at its start
    soft_delete: Query  # (rows soft-deleted, users whose won field they backed)
    register_source: Query
    mark_changed_winners: Query


def user_params(spec: LoadSpec, options: LoadOptions) -> dict[str, object]:
    return {
        "family": spec.family,
        "priority": list(options.priority(spec.family)),
        "unlisted": len(options.priority(spec.family)) + 1,
        "rank": options.rank(spec.family),
    }


def build_statements(spec: LoadSpec, *, windowed: bool = False) -> SessionStatements:
    """windowed: the session covers only rows whose spec.window_column lies in
    [%(window_start)s, %(window_end)s); its soft delete stays inside that window."""
    table = sql.Identifier(spec.table)
    key = sql.Identifier(spec.key_column)
    typed = [sql.Identifier(column.name) for column in spec.columns]
    stage_columns = [
        ("key", spec.key_sql_type),
        ("email", "text"),
        ("content_hash", "bytea"),
        ("raw", "text"),  # cast to jsonb only for rows that are written
        *CANDIDATE_COLUMNS,
        *[(column.name, column.sql_type) for column in spec.columns],
    ]
    scope_columns = [sql.Identifier(name) for name in spec.scope]
    scope_values = [sql.Placeholder(f"scope_{name}") for name in spec.scope]
    in_scope = sql.SQL("").join(
        sql.SQL(" and t.{} = {}").format(column, value)
        for column, value in zip(scope_columns, scope_values, strict=True)
    )
    covered = in_scope
    if windowed:
        if spec.window_column is None:
            raise ValueError(f"{spec.name} has no window_column: it cannot be synced by window")
        covered += sql.SQL(
            " and t.{time} >= %(window_start)s and t.{time} < %(window_end)s"
        ).format(time=sql.Identifier(spec.window_column))
    statements = SessionStatements(
        create_temp=(
            sql.SQL("create temp table {} ({})").format(STAGE, _columns_ddl(stage_columns)),
            sql.SQL("create temp table {} ({})").format(
                STAGE_USERS, _columns_ddl(list(USER_CANDIDATE_COLUMNS))
            ),
            sql.SQL("create temp table {} (key {})").format(SEEN, sql.SQL(spec.key_sql_type)),
            sql.SQL("create temp table {} (user_id uuid)").format(RECOMPUTE),
        ),
        # One lookup by the unique key per probed record, whatever the statistics say: a
        # LATERAL subquery with LIMIT is not flattened into a join, so the planner cannot
        # pick a hash join that reads every live row of the table for each probe (it did
        # while a freshly loaded table had no statistics yet: 186 ms per 2,500 keys, not 11).
        probe=sql.SQL(
            "select p.key from unnest(%b::{key_type}[], %b::bytea[]) as p(key, hash)"
            " left join lateral (select t.content_hash, t.deleted_at from {table} t"
            " where t.{key} = p.key limit 1) t on true"
            " where t.content_hash is distinct from p.hash or t.deleted_at is not null"
        ).format(key_type=sql.SQL(spec.key_sql_type), table=table, key=key),
        truncate=sql.SQL("truncate {}, {}").format(STAGE, STAGE_USERS),
        copy_stage=sql.SQL("copy {} from stdin (format binary)").format(STAGE),
        # raw travels as the UTF-8 bytes orjson made: binary text and bytea share a wire format
        stage_types=(
            spec.key_sql_type,
            "text",
            "bytea",
            "bytea",
            *(sql_type for _, sql_type in CANDIDATE_COLUMNS),
            *(c.sql_type for c in spec.columns),
        ),
        copy_users=sql.SQL("copy {} from stdin (format binary)").format(STAGE_USERS),
        copy_seen=sql.SQL("copy {} from stdin (format binary)").format(SEEN),
        upsert_users=_upsert_users(),
        upsert_rows=_upsert_rows(table, key, typed, scope_columns, scope_values),
        # The slice's rows often have no statistics yet (written in this very transaction),
        # so the planner may expect a handful and anti-join by nested loop: with an index on
        # the seen keys that is a probe per row, without it a scan of every seen key per row.
        index_seen=sql.SQL("create index on {} (key)").format(SEEN),
        analyze_seen=sql.SQL("analyze {}").format(SEEN),
        count_live=sql.SQL("select count(*) from {} t where t.deleted_at is null{}").format(
            table, in_scope
        ),
        any_live_covered=sql.SQL(
            "select exists (select 1 from {} t where t.deleted_at is null{})::int"
        ).format(table, covered),
        soft_delete=sql.SQL(
            "with deleted as ("
            " update {table} t set deleted_at = now() where t.deleted_at is null{covered}"
            " and not exists (select 1 from {seen} s where s.key = t.{key})"
            " returning t.user_id, {ref} as ref),"
            " marked as ({mark} select d.user_id from deleted d"
            " join users u on u.id = d.user_id"
            " where d.ref in (u.name_source_record, u.username_source_record) returning 1)"
            " select (select count(*) from deleted), (select count(*) from marked)"
        ).format(
            table=table,
            covered=covered,
            seen=SEEN,
            key=key,
            ref=record_reference(
                spec.table, sql.SQL("t.{}").format(key), row_hash=_row_hashed(spec)
            ),
            mark=sql.SQL("insert into {} (user_id)").format(RECOMPUTE),
        ),
        register_source=sql.SQL(
            "insert into user_field_sources (source_table, family, key_column)"
            " values ({}, {}, {}) on conflict (source_table) do nothing"
        ).format(sql.Literal(spec.table), sql.Literal(spec.family), sql.Literal(spec.key_column)),
        mark_changed_winners=_mark_changed_winners(spec, table, key),
    )
    rendered: dict[str, Any] = {"create_temp": tuple(map(_rendered, statements.create_temp))}
    for item in fields(statements):
        value = getattr(statements, item.name)
        if isinstance(value, Query):
            rendered[item.name] = _rendered(value)
    return replace(statements, **rendered)


def _rendered(statement: sql.Composable) -> sql.SQL:
    """The statement as one piece of SQL text (placeholders kept).

    psycopg renders a Composed again at every execute, walking its whole tree: the users
    upsert alone has thousands of parts, and a small day session spent about 2 ms of client
    CPU in it. A plain SQL costs one encode, and psycopg caches the conversion of its bytes.
    """
    return sql.SQL(statement.as_string())


def record_reference(table: str, key: sql.Composable, *, row_hash: bool) -> sql.Composed:
    """'<table>:<key>' of a row, as users' *_source_record names it (row hashes in hex)."""
    text = sql.SQL("encode({}, 'hex')").format(key) if row_hash else key
    return sql.SQL("{} || {}").format(sql.Literal(f"{table}:"), text)


def _mark_changed_winners(
    spec: LoadSpec, table: sql.Identifier, key: sql.Identifier
) -> sql.Composed:
    """Users whose won field a staged row backs, when that row now offers something else (or
    moves to another user): the field must be recomputed from the live rows. One index lookup
    per staged row (they are only the new and changed ones); new rows find nothing."""
    differs = sql.SQL(" or ").join(
        sql.SQL("t.{0} is distinct from s.{0}").format(sql.Identifier(name))
        for name in ("email", *(name for name, _ in CANDIDATE_COLUMNS))
    )
    candidate_columns = sql.SQL(", ").join(
        sql.SQL("t.{}").format(sql.Identifier(name)) for name, _ in CANDIDATE_COLUMNS
    )
    return sql.SQL(
        "insert into {recompute} (user_id)"
        " select t.user_id from {stage} s cross join lateral"
        " (select t.user_id, t.email, {candidate_columns} from {table} t"
        " where t.{key} = s.key limit 1) t"
        " join users u on u.id = t.user_id"
        " where {ref} in (u.name_source_record, u.username_source_record) and ({differs})"
    ).format(
        recompute=RECOMPUTE,
        stage=STAGE,
        candidate_columns=candidate_columns,
        table=table,
        key=key,
        ref=record_reference(spec.table, sql.SQL("s.key"), row_hash=_row_hashed(spec)),
        differs=differs,
    )


def _row_hashed(spec: LoadSpec) -> bool:
    return spec.key_kind is KeyKind.ROW_HASH


def recompute_users(sources: list[tuple[str, str, str]]) -> sql.Composed:
    """Recompute name and username of the users in RECOMPUTE from the live rows of every
    source table `(table, family, key_column)`: per field the value of the best-ranked family,
    within it the newest record (undated last), with its provenance; null when no live row
    offers one. Users are locked in email order, as the upsert does, so sessions cannot
    deadlock. Every source table is read for the affected users (there is no index on
    user_id): this runs only when a won field lost its row, not on the common path."""
    candidates = sql.SQL(" union all ").join(
        sql.SQL(
            "select t.user_id, {family} as family, {ref} as ref, t.candidate_name,"
            " t.candidate_username, t.candidate_observed_at"
            " from {table} t join affected a on a.user_id = t.user_id"
            " where t.deleted_at is null"
        ).format(
            family=sql.Literal(family),
            ref=record_reference(
                table,
                sql.SQL("t.{}").format(sql.Identifier(key_column)),
                row_hash=key_column == KeyKind.ROW_HASH.value,
            ),
            table=sql.Identifier(table),
        )
        for table, family, key_column in sources
    )
    best = sql.SQL(", ").join(
        sql.SQL(
            "best_{f} as (select distinct on (user_id) user_id, candidate_{f} as value,"
            " family, ref, candidate_observed_at as observed from ranked"
            " where candidate_{f} is not null"
            " order by user_id, rank, candidate_observed_at desc nulls last, ref desc)"
        ).format(f=sql.SQL(field))
        for field in PROVENANCED_FIELDS
    )
    chosen = sql.SQL(", ").join(
        sql.SQL(
            "b_{f}.value as {f}, b_{f}.family as {f}_source, b_{f}.ref as {f}_source_record,"
            " b_{f}.observed as {f}_observed_at"
        ).format(f=sql.SQL(field))
        for field in PROVENANCED_FIELDS
    )
    joins = sql.SQL(" ").join(
        sql.SQL("left join best_{f} b_{f} on b_{f}.user_id = l.id").format(f=sql.SQL(field))
        for field in PROVENANCED_FIELDS
    )
    provenance = [
        sql.Identifier(f"{field}{suffix}")
        for field in PROVENANCED_FIELDS
        for suffix in ("", "_source", "_source_record", "_observed_at")
    ]
    assignments = sql.SQL(", ").join(
        [sql.SQL("{0} = f.{0}").format(column) for column in provenance]
        + [
            sql.SQL(
                "{f}_updated_at = case when u.{f} is distinct from f.{f} then now()"
                " else u.{f}_updated_at end"
            ).format(f=sql.SQL(field))
            for field in PROVENANCED_FIELDS
        ]
    )
    return sql.SQL(
        "with affected as (select distinct user_id from {recompute}),"
        " locked as (select u.id from users u join affected a on a.user_id = u.id"
        " order by u.email for update of u),"
        " candidates as ({candidates}),"
        " ranked as (select c.*, coalesce(array_position(%(priority)s::text[], c.family),"
        " %(unlisted)s) as rank from candidates c),"
        " {best},"
        " fields as (select l.id as user_id, {chosen} from locked l {joins})"
        " update users u set {assignments}, updated_at = now()"
        " from fields f where u.id = f.user_id"
        " and ({current}) is distinct from ({recomputed})"
    ).format(
        recompute=RECOMPUTE,
        candidates=candidates,
        best=best,
        chosen=chosen,
        joins=joins,
        assignments=assignments,
        current=sql.SQL(", ").join(sql.SQL("u.{}").format(c) for c in provenance),
        recomputed=sql.SQL(", ").join(sql.SQL("f.{}").format(c) for c in provenance),
    )


def _upsert_users() -> sql.Composed:
    """Create missing users and apply winning field values; untouched users are not written.

    Rows are locked in email order so concurrent sessions cannot deadlock on users. Each
    candidate finds its user by one index lookup (LATERAL with LIMIT is never turned into a
    join): a join let the planner hash the whole users table for every chunk, a cost that
    grew with the table (0.29 s a chunk at 21k users, 0.82 s at 210k).
    """
    provenance_insert = sql.SQL(", ").join(
        sql.SQL(
            "c.{f}, case when c.{f} is not null then %(family)s end, c.{rec},"
            " c.{obs}, case when c.{f} is not null then now() end"
        ).format(
            f=sql.Identifier(f),
            rec=sql.Identifier(f"{f}_record"),
            obs=sql.Identifier(f"{f}_observed_at"),
        )
        for f in PROVENANCED_FIELDS
    )
    provenance_columns = sql.SQL(", ").join(
        sql.Identifier(f"{f}{suffix}")
        for f in PROVENANCED_FIELDS
        for suffix in ("", "_source", "_source_record", "_observed_at", "_updated_at")
    )
    assignments = sql.SQL(", ").join(
        sql.SQL("{target} = case when {wins} then {value} else u.{target} end").format(
            target=sql.Identifier(f"{f}{suffix}"),
            wins=_wins(f, "u", "excluded"),
            value=value,
        )
        for f in PROVENANCED_FIELDS
        for suffix, value in (
            ("", sql.SQL("excluded.{}").format(sql.Identifier(f))),
            ("_source", sql.SQL("%(family)s")),
            ("_source_record", sql.SQL("excluded.{}").format(sql.Identifier(f"{f}_source_record"))),
            ("_observed_at", sql.SQL("excluded.{}").format(sql.Identifier(f"{f}_observed_at"))),
            ("_updated_at", sql.SQL("now()")),
        )
    )
    return sql.SQL(
        "with written as ("
        " insert into users as u (email, email_source, email_source_record, {provenance_columns})"
        " select c.email, %(family)s, c.first_record, {provenance_insert}"
        " from {stage_users} c left join lateral"
        " (select e.* from users e where e.email = c.email limit 1) e on true"
        " where e.id is null or {any_wins_existing}"
        " order by c.email"
        " on conflict (email) do update set {assignments}, updated_at = now()"
        " where {any_wins_conflict}"
        " returning (xmax = 0) as created)"
        " select count(*) filter (where created), count(*) filter (where not created) from written"
    ).format(
        provenance_columns=provenance_columns,
        provenance_insert=provenance_insert,
        stage_users=STAGE_USERS,
        any_wins_existing=_any_wins("e", "c"),
        assignments=assignments,
        any_wins_conflict=_any_wins("u", "excluded"),
    )


def _upsert_rows(
    table: sql.Identifier,
    key: sql.Identifier,
    typed: list[sql.Identifier],
    scope_columns: list[sql.Identifier],
    scope_values: list[sql.Placeholder],
) -> sql.Composed:
    """Insert new rows, rewrite changed or revived ones. The stage holds only rows the probe
    found new or changed; a key staged twice in one session is settled by ON CONFLICT.

    Each staged row finds its user by one index lookup (LATERAL with LIMIT is never turned
    into a join): the stage has no statistics, and the planner hashed the whole users table
    for every chunk instead (33 ms a chunk at 66k users, growing with them, whatever the
    chunk's size)."""
    candidates = [sql.Identifier(name) for name, _ in CANDIDATE_COLUMNS]
    insert_columns = [
        key,
        *map(sql.Identifier, ("user_id", "email", "content_hash")),
        *candidates,
        *typed,
    ]
    select_values = [
        sql.SQL("s.key"),
        sql.SQL("u.id"),
        sql.SQL("s.email"),
        sql.SQL("s.content_hash"),
        *[sql.SQL("s.{}").format(column) for column in (*candidates, *typed)],
    ]
    updated = [
        *map(sql.Identifier, ("user_id", "email", "content_hash", "raw")),
        *candidates,
        *typed,
    ]
    return sql.SQL(
        "with written as ("
        " insert into {table} as t ({columns}, raw{scope_columns})"
        " select {values}, s.raw::jsonb{scope_values}"
        " from {stage} s cross join lateral"
        " (select u.id from users u where u.email = s.email limit 1) u"
        " on conflict ({key}) do update set {assignments}, last_synced = now(), deleted_at = null"
        " where t.content_hash <> excluded.content_hash or t.deleted_at is not null"
        " returning (xmax = 0) as created)"
        " select count(*) filter (where created), count(*) filter (where not created) from written"
    ).format(
        table=table,
        columns=sql.SQL(", ").join(insert_columns),
        scope_columns=sql.SQL("").join(sql.SQL(", {}").format(c) for c in scope_columns),
        values=sql.SQL(", ").join(select_values),
        scope_values=sql.SQL("").join(sql.SQL(", {}").format(v) for v in scope_values),
        stage=STAGE,
        key=key,
        assignments=sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(column) for column in updated
        ),
    )


UPSERT_REJECTS = sql.SQL(
    "insert into sync_rejects as r (source, scope, fingerprint, record_key, partition_key,"
    " run_id, sync_log_id, raw, reason)"
    " select %(source)s, %(scope)s::jsonb, f, k, %(partition)s, %(run_id)s, %(log_id)s,"
    " j::jsonb, reason"
    " from unnest(%(fingerprints)s::bytea[], %(keys)s::text[], %(raws)s::text[],"
    " %(reasons)s::text[]) as x(f, k, j, reason)"
    " on conflict (source, scope, fingerprint) do update set"
    " last_seen = now(), times_seen = r.times_seen + 1, reason = excluded.reason,"
    " partition_key = excluded.partition_key, run_id = excluded.run_id,"
    " sync_log_id = excluded.sync_log_id, resolved_at = null, resolved_by_run = null"
)

# A record that loads makes the unresolved rejects of its key obsolete (the source fixed it).
RESOLVE_REJECTS_BY_KEY = _rendered(
    sql.SQL(
        "update sync_rejects r set resolved_at = now(), resolved_by_run = %(run_id)s"
        " from {stage} s where r.source = %(source)s and r.scope = %(scope)s::jsonb"
        " and r.resolved_at is null and r.record_key = s.key"
    ).format(stage=STAGE)
)

RESOLVE_REJECTS = sql.SQL(
    "update sync_rejects set resolved_at = now(), resolved_by_run = %(run_id)s"
    " where source = %(source)s and scope = %(scope)s::jsonb"
    " and fingerprint = any(%(fingerprints)s::bytea[]) and resolved_at is null"
)
