-- The unified person and the records of every sync session (SPEC §3.1, §3.2).

-- One row per normalised email (trimmed, lower-case, Unicode NFC). Each descriptive field
-- remembers which source family and which record gave it, the record's own time (used to let
-- the newest record of the same source win) and when we wrote it, so a conflict can be explained.
create table users (
    id                      uuid primary key default gen_random_uuid(),
    email                   text not null,
    name                    text,
    username                text,
    created_at              timestamptz not null default now(),
    updated_at              timestamptz not null default now(),
    email_source            text not null,
    email_source_record     text not null,
    name_source             text,
    name_source_record      text,
    name_observed_at        timestamptz,
    name_updated_at         timestamptz,
    username_source         text,
    username_source_record  text,
    username_observed_at    timestamptz,
    username_updated_at     timestamptz,
    constraint users_email_key unique (email),
    constraint users_email_trimmed check (email = btrim(email) and position('@' in email) > 1),
    constraint users_name_provenance check ((name is null) = (name_source is null)),
    constraint users_username_provenance check ((username is null) = (username_source is null))
);

comment on column users.email is 'normalised: trimmed, lower-case, Unicode NFC; raw spellings stay in the source rows';
comment on column users.name_source is 'source family (ghl, whop, sheet, ...) whose value won by priority';
comment on column users.name_source_record is '<source table>:<external id or row hash> that gave the value';
comment on column users.name_observed_at is 'the source record''s own time; within one source the newest record wins';

-- One row per sync session. Inserted as RUNNING in its own transaction before any data is
-- written, finished in the data transaction, or marked FAILED afterwards: a failure is
-- always recorded, and a killed session shows as RUNNING only until the next session starts
-- and sees that its database session is gone.
create table sync_log (
    id                 bigint generated always as identity primary key,
    run_id             text,
    source             text not null,
    target_table       text not null,
    scope              jsonb not null default '{}',
    partition_key      text,
    full_sync          boolean not null,
    user_id            uuid references users (id),
    status             text not null,
    records_processed  bigint not null default 0,
    inserted           bigint not null default 0,
    updated            bigint not null default 0,
    unchanged          bigint not null default 0,
    duplicates         bigint not null default 0,
    rejected           bigint not null default 0,
    soft_deleted       bigint not null default 0,
    users_created      bigint not null default 0,
    users_updated      bigint not null default 0,
    error_message      text,
    details            jsonb not null default '{}',
    backend_pid        integer,
    backend_start      timestamptz,
    started_at         timestamptz not null default clock_timestamp(),
    completed_at       timestamptz,
    duration           interval generated always as (completed_at - started_at) stored,
    constraint sync_log_status check (status in ('RUNNING', 'SUCCESS', 'PARTIAL', 'FAILED')),
    constraint sync_log_completed check ((status = 'RUNNING') = (completed_at is null))
);

comment on column sync_log.records_processed is
    'records the extract handed over = inserted + updated + unchanged + duplicates + rejected';
comment on column sync_log.duplicates is 'records repeated within one chunk (same key): the last one won';
comment on column sync_log.backend_pid is
    'database session of a RUNNING row: when it is gone, the next session marks the row abandoned';
comment on column sync_log.details is 'reject samples, soft-delete refusal, stage timings';

create index sync_log_source_started on sync_log (source, started_at desc);
create index sync_log_running on sync_log (source, partition_key) where status = 'RUNNING';

-- Records that failed validation, kept with their reason until a replay loads them.
-- One row per (source, scope, fingerprint): a re-run refreshes last_seen instead of duplicating.
create table sync_rejects (
    id               bigint generated always as identity primary key,
    source           text not null,
    scope            jsonb not null default '{}',
    fingerprint      bytea not null,
    record_key       text,
    partition_key    text,
    run_id           text,
    sync_log_id      bigint references sync_log (id),
    raw              jsonb not null,
    reason           text not null,
    first_seen       timestamptz not null default now(),
    last_seen        timestamptz not null default now(),
    times_seen       integer not null default 1,
    resolved_at      timestamptz,
    resolved_by_run  text,
    constraint sync_rejects_fingerprint_key unique (source, scope, fingerprint)
);

comment on column sync_rejects.fingerprint is 'SHA-256 of the record''s canonical JSON (sorted keys)';
comment on column sync_rejects.record_key is 'the record''s external id or row hash (hex) when it could be read';

create index sync_rejects_unresolved on sync_rejects (source) where resolved_at is null;
