-- Unresolved rejects (sync_rejects) by feed and reason: how many, since when, a few ids to
-- look at. `feed` names the source and, for sources that share a table (one per sheet), its
-- scope, as in sync_runs. Each row's records: `costudy rejects list --reason ...`; replay them
-- with `costudy rejects replay` or the job replay_rejects.
-- group: sync_health
create or replace view rejects_by_reason as
select
    r.source,
    r.scope,
    r.source || coalesce(
        ' ' || (select string_agg(s.value, '/' order by s.key)
                from jsonb_each_text(r.scope) as s
                where position(s.value in r.source) = 0),
        ''
    ) as feed,
    r.reason,
    count(*) as rejects,
    sum(r.times_seen) as times_seen,
    min(r.first_seen) as first_seen,
    max(r.last_seen) as last_seen,
    (array_agg(r.id order by r.id))[1:20] as sample_ids
from sync_rejects r
where r.resolved_at is null
group by r.source, r.scope, r.reason;
