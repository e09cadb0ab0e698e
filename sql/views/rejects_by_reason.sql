-- Unresolved rejects (sync_rejects) by feed and reason: how many, since when, a few ids to
-- look at, by `feed` (its asset's name), as in sync_runs. Each row's records: `costudy rejects list --reason ...`; replay them
-- with `costudy rejects replay` or the job replay_rejects.
-- group: sync_health
create or replace view rejects_by_reason as
select
    r.source,
    r.scope,
    r.source as feed,
    r.reason,
    count(*) as rejects,
    sum(r.times_seen) as times_seen,
    min(r.first_seen) as first_seen,
    max(r.last_seen) as last_seen,
    (array_agg(r.id order by r.id))[1:20] as sample_ids
from sync_rejects r
where r.resolved_at is null
group by r.source, r.scope, r.reason;
