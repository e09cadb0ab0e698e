-- The state of every feed at a glance: its last run and outcome, its last successful sync
-- (SUCCESS, or PARTIAL: committed with rejects) and that run's throughput, and failures over
-- the last 7 days. A feed that never ran has no row here; the report lists it as never synced.
-- group: sync_health
-- upstream: sync_runs
create or replace view sync_health as
with last_run as (
    select distinct on (r.feed)
        r.feed, r.source, r.status as last_status, r.started_at as last_run_at,
        r.error_message as last_error
    from sync_runs r
    order by r.feed, r.started_at desc, r.sync_log_id desc
),
last_success as (
    select distinct on (r.feed)
        r.feed, r.completed_at as last_success_at, r.partition_key as last_success_partition,
        r.records_processed as last_success_records, r.users_synced as last_success_users,
        r.duration_s as last_success_duration_s, r.rows_per_s as last_success_rows_per_s
    from sync_runs r
    where r.status in ('SUCCESS', 'PARTIAL')
    order by r.feed, r.started_at desc, r.sync_log_id desc
),
week as (
    select
        r.feed,
        count(*) as runs_7d,
        count(*) filter (where r.status = 'FAILED') as failures_7d,
        coalesce(sum(r.users_synced), 0) as users_synced_7d
    from sync_runs r
    where r.started_at > now() - interval '7 days'
    group by r.feed
)
select
    l.feed,
    l.source,
    l.last_status,
    l.last_run_at,
    l.last_error,
    s.last_success_at,
    s.last_success_partition,
    s.last_success_records,
    s.last_success_users,
    s.last_success_duration_s,
    s.last_success_rows_per_s,
    coalesce(w.runs_7d, 0) as runs_7d,
    coalesce(w.failures_7d, 0) as failures_7d,
    coalesce(w.users_synced_7d, 0) as users_synced_7d
from last_run l
left join last_success s on s.feed = l.feed
left join week w on w.feed = l.feed;

comment on view sync_health is 'Last run, last success and failures per feed (see sql/views/sync_health.sql)';
