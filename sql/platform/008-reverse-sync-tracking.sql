-- Bookkeeping of the reverse sync (SPEC §4): which website event landed where, every operation
-- the sync performed, and the pushes the website sent.
--
-- All three live here, in the platform database, beside the targets (007): the direct strategy
-- writes a chunk of targets and their tracking rows in ONE transaction, so a crash can never
-- leave a target without its tracking row (or the reverse), and a re-run finds every landed
-- event. The website database is the website app's: the product only reads it.

create table reverse_sync_tracking (
    event_type text not null
        constraint reverse_sync_tracking_event_type_slug check (event_type ~ '^[a-z][a-z0-9_]*$'),
    source_id text not null,
    -- SHA-256 of the source row's synced columns (and the mapping version): unchanged events
    -- are skipped, an edited one is written again
    fingerprint text not null
        constraint reverse_sync_tracking_fingerprint_hex check (fingerprint ~ '^[0-9a-f]{64}$'),
    source_updated_at timestamptz not null,
    strategy text not null
        constraint reverse_sync_tracking_strategy check (strategy in ('direct', 'api')),
    target_table text not null,
    target_id text,
    status text not null
        constraint reverse_sync_tracking_status check (status in ('pending', 'synced', 'failed', 'dead')),
    attempts integer not null default 0
        constraint reverse_sync_tracking_attempts_non_negative check (attempts >= 0),
    last_error text,
    first_attempted_at timestamptz not null default now(),
    last_attempted_at timestamptz not null default now(),
    synced_at timestamptz,
    constraint reverse_sync_tracking_pkey primary key (event_type, source_id),
    constraint reverse_sync_tracking_synced_has_target
        check (status <> 'synced' or (target_id is not null and synced_at is not null)),
    constraint reverse_sync_tracking_dead_has_reason check (status <> 'dead' or last_error is not null)
);

comment on table reverse_sync_tracking is
    'One row per website event (event_type, source_id): the content fingerprint last written, '
    'where it landed (target_table, target_id) and how (status, attempts, last_error). '
    'pending = claimed by an API run whose answer is not recorded yet; failed = will be retried; '
    'dead = a dead letter (invalid, or past the retry cap), last_error says why.';
comment on column reverse_sync_tracking.source_updated_at is
    'The source row''s updated_at when read: the high-water mark of the incremental read.';
comment on column reverse_sync_tracking.target_id is
    'The target row''s id (a uuid for direct writes, the API''s id for API writes); kept when a '
    'later version of the event fails, since the earlier version still stands.';

create index reverse_sync_tracking_watermark on reverse_sync_tracking (event_type, source_updated_at);
create index reverse_sync_tracking_to_retry on reverse_sync_tracking (event_type)
    where status in ('pending', 'failed');
create index reverse_sync_tracking_synced_at on reverse_sync_tracking (event_type, synced_at);

-- Append-only: every write, failure, dead letter and run summary the sync performed.
create table reverse_sync_audit (
    id bigint generated always as identity primary key,
    run_id text not null,
    event_type text not null,
    source_id text,
    operation text not null
        constraint reverse_sync_audit_operation
            check (operation in ('create', 'update', 'failed', 'dead_letter', 'run')),
    strategy text not null
        constraint reverse_sync_audit_strategy check (strategy in ('direct', 'api')),
    target_table text,
    target_id text,
    fingerprint text,
    attempt integer,
    detail jsonb not null default '{}'
        constraint reverse_sync_audit_detail_object check (jsonb_typeof(detail) = 'object'),
    at timestamptz not null default now(),
    constraint reverse_sync_audit_run_rows_have_no_source
        check ((operation = 'run') = (source_id is null))
);

comment on table reverse_sync_audit is
    'Every operation of the reverse sync, append-only: one row per event written, failed or '
    'dead-lettered (detail: error, HTTP status, replayed) and one ''run'' row per run (detail: '
    'the run''s counts and duration).';

create index reverse_sync_audit_event on reverse_sync_audit (event_type, source_id, at);
create index reverse_sync_audit_run on reverse_sync_audit (run_id);

-- Pushes from the website's webhook. Refused deliveries are kept too (without their body), so
-- an operator sees a website that signs with the wrong secret; only accepted ones trigger syncs.
create table reverse_sync_webhook_inbox (
    id bigint generated always as identity primary key,
    delivery_id text not null
        constraint reverse_sync_webhook_inbox_delivery_id_length check (length(delivery_id) <= 200),
    event_type text,
    source_id text,
    payload jsonb,
    signature_verified boolean not null,
    refusal text,
    sent_at timestamptz,
    received_at timestamptz not null default now(),
    processed_at timestamptz,
    constraint reverse_sync_webhook_inbox_accepted_is_verified
        check (refusal is not null or signature_verified),
    constraint reverse_sync_webhook_inbox_accepted_names_event
        check (refusal is not null or (event_type is not null and source_id is not null and payload is not null)),
    constraint reverse_sync_webhook_inbox_only_accepted_processed
        check (processed_at is null or refusal is null)
);

comment on table reverse_sync_webhook_inbox is
    'Signed pushes from the website (event_type, source_id: a row that changed). The reverse '
    'sync reads the website row itself; the push only makes it sync sooner. refusal says why '
    'a delivery was refused (unsigned, bad signature, stale, replayed, invalid).';
comment on column reverse_sync_webhook_inbox.delivery_id is
    'The sender''s id of the delivery (signed): unique among accepted deliveries, so a replay '
    'is refused.';

create unique index reverse_sync_webhook_inbox_delivery_key on reverse_sync_webhook_inbox (delivery_id)
    where refusal is null;
create index reverse_sync_webhook_inbox_unprocessed on reverse_sync_webhook_inbox (event_type, id)
    where refusal is null and processed_at is null;
