-- Every API call, the monthly summary kept from it by trigger, and the enforcement of each
-- user's monthly request limit (plan limit x usage multiplier + bonus credits).
--
-- No cron job resets anything: the counters on users belong to users.usage_period_start; the
-- first call of a new month starts a new period, and every read treats a past period's counters
-- as zero.

create table api_usage (
    id bigint generated always as identity primary key,
    user_id uuid not null
        constraint api_usage_user_fkey references users (id) on delete cascade,
    endpoint text not null
        constraint api_usage_endpoint_not_blank check (btrim(endpoint) <> ''),
    response_time_ms integer not null
        constraint api_usage_response_time_non_negative check (response_time_ms >= 0),
    payload_size_bytes bigint not null default 0
        constraint api_usage_payload_size_non_negative check (payload_size_bytes >= 0),
    called_at timestamptz not null default now()
);

comment on table api_usage is
    'One row per API call, append-only. Inserting is the metering step: a statement that '
    'would take a user past the monthly limit is refused whole (SQLSTATE 54000).';

create index api_usage_user_called_at on api_usage (user_id, called_at desc);

create table monthly_usage_summary (
    user_id uuid not null
        constraint monthly_usage_summary_user_fkey references users (id) on delete cascade,
    period_start date not null
        constraint monthly_usage_summary_period_is_month_start
            check (extract(day from period_start) = 1),
    request_count bigint not null,
    total_payload_bytes bigint not null,
    total_response_time_ms bigint not null,
    max_response_time_ms integer not null,
    first_call_at timestamptz not null,
    last_call_at timestamptz not null,
    updated_at timestamptz not null default now(),
    primary key (user_id, period_start)
);

comment on table monthly_usage_summary is
    'Per user and calendar month (UTC): every call recorded in api_usage, kept by trigger. '
    'History: admin resets and pruning of api_usage do not change it.';

-- The limit before referral bonuses: the user's override, else the plan's (NULL: unlimited).
create function base_request_limit(u users) returns integer
    language sql
    stable
    return coalesce(
        u.monthly_request_limit_override,
        (select p.monthly_request_limit from subscription_limits p where p.plan = u.plan)
    );

create function effective_request_limit(u users) returns bigint
    language sql
    stable
    return floor(base_request_limit(u) * u.usage_multiplier)::bigint + u.bonus_credits;

comment on function effective_request_limit(users) is
    'Requests allowed per usage period: base limit x usage_multiplier + bonus_credits; NULL '
    'means unlimited.';

-- Statement-level with a transition table: a batch of calls costs one summary upsert and one
-- users update, not one per row.
create function api_usage_after_insert() returns trigger
    language plpgsql
as $$
declare
    refused record;
begin
    -- Lock the callers first, in id order (no deadlocks between concurrent batches): from here
    -- on their counters cannot change under us, so neither the check below nor a month
    -- roll-over can be raced past. Each later statement reads with a fresh snapshot.
    perform 1 from users where id in (select user_id from new_calls)
    order by id
    for no key update;

    insert into monthly_usage_summary as s (
        user_id, period_start, request_count, total_payload_bytes, total_response_time_ms,
        max_response_time_ms, first_call_at, last_call_at
    )
    select user_id, usage_period_of(called_at), count(*), sum(payload_size_bytes),
           sum(response_time_ms), max(response_time_ms), min(called_at), max(called_at)
    from new_calls
    group by user_id, usage_period_of(called_at)
    on conflict (user_id, period_start) do update set
        request_count = s.request_count + excluded.request_count,
        total_payload_bytes = s.total_payload_bytes + excluded.total_payload_bytes,
        total_response_time_ms = s.total_response_time_ms + excluded.total_response_time_ms,
        max_response_time_ms = greatest(s.max_response_time_ms, excluded.max_response_time_ms),
        first_call_at = least(s.first_call_at, excluded.first_call_at),
        last_call_at = greatest(s.last_call_at, excluded.last_call_at),
        updated_at = now();

    -- Calls of the user's current period add to its counter, calls of a later period start a
    -- new one; calls of a closed period are history only (summary, not the limit). The counters
    -- are written before the check: a refusal aborts the statement, and the update with it.
    with batch as (
        select user_id, usage_period_of(called_at) as period_start, count(*) as requests,
               sum(payload_size_bytes) as payload_bytes, max(called_at) as last_call_at
        from new_calls
        group by user_id, usage_period_of(called_at)
    ),
    counted as (
        select b.user_id, b.period_start, b.last_call_at, u.email, u.plan,
               b.requests + case when b.period_start = u.usage_period_start
                                 then u.period_request_count else 0 end as requests_in_period,
               b.payload_bytes + case when b.period_start = u.usage_period_start
                                      then u.period_payload_bytes else 0 end as payload_in_period,
               effective_request_limit(u) as request_limit
        from batch b
        join users u on u.id = b.user_id
        where b.period_start >= u.usage_period_start
    ),
    newest as (
        update users u set
            usage_period_start = c.period_start,
            period_request_count = c.requests_in_period,
            period_payload_bytes = c.payload_in_period,
            last_api_call_at = greatest(u.last_api_call_at, c.last_call_at)
        from (
            select distinct on (user_id) *
            from counted
            order by user_id, period_start desc
        ) c
        where u.id = c.user_id
    )
    select * into refused
    from counted
    where requests_in_period > request_limit
    order by user_id, period_start
    limit 1;
    if found then
        raise exception using
            errcode = 'program_limit_exceeded',
            message = format(
                'monthly request limit reached for user %s (%s, plan %s): %s requests in the '
                'period starting %s, limit %s',
                refused.user_id, refused.email, refused.plan, refused.requests_in_period,
                refused.period_start, refused.request_limit),
            hint = 'the statement recorded nothing; the limit grows with referrals, bonus '
                   'credits or a larger plan, and resets at the next calendar month (UTC)';
    end if;
    return null;
end
$$;

create trigger api_usage_counts after insert on api_usage
    referencing new table as new_calls
    for each statement execute function api_usage_after_insert();

create function refuse_update() returns trigger
    language plpgsql
as $$
begin
    raise exception using
        errcode = 'feature_not_supported',
        message = format('%I is append-only: rows cannot be updated', tg_table_name);
end
$$;

-- The summary and the counters are derived from inserts; an edited call would make them lie.
create trigger api_usage_append_only before update on api_usage
    for each statement execute function refuse_update();

create view user_usage_overview as
select
    u.id as user_id,
    u.email,
    u.plan,
    usage_period_of(now()) as period_start,
    base_request_limit(u) as base_request_limit,
    u.usage_multiplier,
    u.bonus_credits,
    u.total_referrals,
    effective_request_limit(u) as effective_request_limit,
    counted.requests_used,
    -- NULL for unlimited plans (greatest() would turn NULL into 0)
    case when effective_request_limit(u) is not null
         then greatest(effective_request_limit(u) - counted.requests_used, 0)
    end as requests_remaining,
    counted.payload_bytes_used,
    coalesce(s.request_count, 0) as requests_recorded,
    s.total_response_time_ms / nullif(s.request_count, 0) as avg_response_time_ms,
    u.last_api_call_at
from users u
cross join lateral (
    select
        case when u.usage_period_start = usage_period_of(now())
             then u.period_request_count else 0 end as requests_used,
        case when u.usage_period_start = usage_period_of(now())
             then u.period_payload_bytes else 0 end as payload_bytes_used
) counted
left join monthly_usage_summary s
    on s.user_id = u.id and s.period_start = usage_period_of(now());

comment on view user_usage_overview is
    'Each user''s usage in the current period (UTC month): counted against the limit '
    '(requests_used) and recorded (requests_recorded, which admin resets do not clear). '
    'effective_request_limit and requests_remaining are NULL for unlimited plans.';

create function get_user_usage_stats(p_user_id uuid) returns user_usage_overview
    language plpgsql
    stable
as $$
declare
    stats user_usage_overview;
begin
    select * into stats from user_usage_overview where user_id = p_user_id;
    if not found then
        raise exception using
            errcode = 'no_data_found',
            message = format('get_user_usage_stats: no user with id %s', p_user_id);
    end if;
    return stats;
end
$$;

comment on function get_user_usage_stats(uuid) is
    'Usage of one user in the current period, referral bonuses included (a row of '
    'user_usage_overview); raises no_data_found for an unknown user.';
