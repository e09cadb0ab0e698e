-- One row per sync session (sync_log) with what an operator compares across runs: users
-- synced (created + updated), outcome, duration and throughput. `feed` is the feed's one
-- name: its asset's (sync_log.source).
-- group: sync_health
create or replace view sync_runs as
select
    l.id as sync_log_id,
    l.source,
    l.target_table,
    l.scope,
    l.source as feed,
    l.partition_key,
    l.full_sync,
    l.run_id,
    l.status,
    l.started_at,
    l.completed_at,
    extract(epoch from l.duration)::numeric(12, 3) as duration_s,
    l.records_processed,
    l.inserted,
    l.updated,
    l.unchanged,
    l.duplicates,
    l.rejected,
    l.soft_deleted,
    l.users_created,
    l.users_updated,
    l.users_created + l.users_updated as users_synced,
    case
        when extract(epoch from l.duration) > 0
        then round(l.records_processed / extract(epoch from l.duration), 1)
    end as rows_per_s,
    l.error_message
from sync_log l;

comment on view sync_runs is 'Sync sessions with duration and rows/s (see sql/views/sync_runs.sql)';
