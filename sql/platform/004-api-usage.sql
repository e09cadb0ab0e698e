-- API usage: admitting a call against the user's monthly request limit (plan limit x usage
-- multiplier + bonus credits), recording every call, and the monthly summary kept by trigger.
--
-- Two steps, because they happen at two moments: admit_api_call before a call is served
-- (atomic, so concurrent calls cannot race past the limit; a refusal is the HTTP 429), and an
-- api_usage insert once it has been served (response time known). Recording is never refused,
-- so no served call goes unlogged.
--
-- No cron job resets anything: users.period_request_count belongs to users.usage_period_start,
-- the first admission of a new month starts a new period, and every read treats a past
-- period's count as zero.

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
    'One row per served API call, append-only; monthly_usage_summary is kept from it by trigger.';

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
    'Per user and calendar month (UTC): the calls recorded in api_usage, kept by trigger. '
    'History: admin resets and pruning old api_usage rows do not change it.';

-- Statement-level with a transition table: a batch of recorded calls costs one upsert.
create function api_usage_summarise() returns trigger
    language plpgsql
as $$
begin
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
    return null;
end
$$;

create trigger api_usage_summary after insert on api_usage
    referencing new table as new_calls
    for each statement execute function api_usage_summarise();

create function refuse_update() returns trigger
    language plpgsql
as $$
begin
    raise exception using
        errcode = 'feature_not_supported',
        message = format('%I is append-only: rows cannot be updated', tg_table_name);
end
$$;

-- The summary is derived from inserts: an edited call would make it lie.
create trigger api_usage_append_only before update on api_usage
    for each statement execute function refuse_update();

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

-- The user, locked until the end of the transaction, or no_data_found naming the caller.
-- FOR NO KEY UPDATE: it queues writers of the user's counters but not the foreign-key checks
-- of inserts that reference the user.
create function locked_user(p_user_id uuid, p_caller text) returns users
    language plpgsql
as $$
declare
    found_user users;
begin
    select * into found_user from users u where u.id = p_user_id for no key update;
    if not found then
        raise exception using
            errcode = 'no_data_found',
            message = format('%s: no user with id %s', p_caller, p_user_id);
    end if;
    return found_user;
end
$$;

create function admit_api_call(p_user_id uuid, p_at timestamptz default now()) returns bigint
    language plpgsql
as $$
declare
    period constant date := usage_period_of(p_at);
    -- locked: concurrent admissions of one user queue here and each counts from the committed
    -- state of the one before, so none can race past the limit or undo a month roll-over
    caller constant users := locked_user(p_user_id, 'admit_api_call');
    request_limit constant bigint := effective_request_limit(caller);
    used integer := 0;
begin
    if period < caller.usage_period_start then
        raise exception using
            errcode = 'invalid_parameter_value',
            message = format('admit_api_call: %s is in the closed period starting %s; user %s '
                             'is counting the period starting %s',
                             p_at, period, p_user_id, caller.usage_period_start);
    end if;
    if period = caller.usage_period_start then
        used := caller.period_request_count;
    end if;
    if used >= request_limit then
        raise exception using
            errcode = 'program_limit_exceeded',
            message = format('monthly request limit reached for user %s (%s, plan %s): %s of '
                             '%s requests used in the period starting %s',
                             p_user_id, caller.email, caller.plan, used, request_limit, period),
            hint = 'the limit grows with referrals, bonus credits or a larger plan, and resets '
                   'on the first of the next month (UTC)';
    end if;
    update users u set usage_period_start = period, period_request_count = used + 1
    where u.id = p_user_id;
    return request_limit - used - 1;
end
$$;

comment on function admit_api_call(uuid, timestamptz) is
    'Counts one request against the user''s limit for the period of p_at (default now) and '
    'returns the requests left (NULL: unlimited). Raises program_limit_exceeded (54000) when '
    'the limit is reached, so the API answers 429 without serving the call.';

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
    coalesce(s.request_count, 0) as requests_recorded,
    coalesce(s.total_payload_bytes, 0) as payload_bytes_recorded,
    s.total_response_time_ms / nullif(s.request_count, 0) as avg_response_time_ms,
    s.last_call_at
from users u
cross join lateral (
    select case when u.usage_period_start = usage_period_of(now())
                then u.period_request_count else 0 end as requests_used
) counted
left join monthly_usage_summary s
    on s.user_id = u.id and s.period_start = usage_period_of(now());

comment on view user_usage_overview is
    'Each user''s usage in the current period (UTC month): admitted and counted against the '
    'limit (requests_used; admins may reset it) and recorded in api_usage (requests_recorded). '
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
