-- Platform users and the subscription plans that set their monthly limits.
-- Also the building blocks every later file uses: the e-mail domain, the updated_at trigger
-- function and the usage period (calendar month, UTC).

-- One user per e-mail holds only if every address is stored the same way: callers lower-case
-- and trim, and anything else is refused here rather than silently rewritten.
create domain email_address as text
    constraint email_address_normalised check (value = lower(btrim(value)))
    constraint email_address_shape check (value ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$');

comment on domain email_address is
    'An e-mail address, lower-case and trimmed (callers normalise; malformed addresses are refused).';

create function set_updated_at() returns trigger
    language plpgsql
as $$
begin
    new.updated_at := now();
    return new;
end
$$;

comment on function set_updated_at() is 'BEFORE UPDATE trigger: stamps updated_at.';

-- Usage is counted per calendar month in UTC, whatever the session's time zone.
create function usage_period_of(p_at timestamptz) returns date
    language sql
    immutable
    parallel safe
    return date_trunc('month', p_at at time zone 'UTC')::date;

comment on function usage_period_of(timestamptz) is
    'The usage period (first day of the calendar month, UTC) that a moment falls in.';

create table subscription_limits (
    plan text primary key
        constraint subscription_limits_plan_slug check (plan ~ '^[a-z][a-z0-9_-]*$'),
    display_name text not null,
    monthly_request_limit integer
        constraint subscription_limits_request_limit_non_negative check (monthly_request_limit >= 0),
    price_cents_monthly integer not null default 0
        constraint subscription_limits_price_non_negative check (price_cents_monthly >= 0),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

comment on table subscription_limits is 'Plan definitions: what each plan allows per month.';
comment on column subscription_limits.monthly_request_limit is
    'API requests per usage period before referral bonuses; NULL means unlimited.';

create trigger subscription_limits_updated_at before update on subscription_limits
    for each row execute function set_updated_at();

insert into subscription_limits (plan, display_name, monthly_request_limit, price_cents_monthly)
values
    ('free', 'Free', 1000, 0),
    ('pro', 'Pro', 10000, 1900),
    ('team', 'Team', 50000, 4900),
    ('enterprise', 'Enterprise', null, 0);

create table users (
    id uuid primary key default gen_random_uuid(),
    email email_address not null
        constraint users_email_key unique,
    name text,
    username text,
    -- referral: the code others sign up with, and what referring has earned this user
    referral_code text not null
        default upper(substr(replace(gen_random_uuid()::text, '-', ''), 1, 10))
        constraint users_referral_code_key unique
        constraint users_referral_code_shape check (referral_code ~ '^[A-Z0-9]{6,32}$'),
    total_referrals integer not null default 0
        constraint users_total_referrals_non_negative check (total_referrals >= 0),
    bonus_credits integer not null default 0
        constraint users_bonus_credits_non_negative check (bonus_credits >= 0),
    usage_multiplier numeric(5, 2) not null default 1.00
        constraint users_usage_multiplier_range check (usage_multiplier between 1.00 and 2.00),
    -- subscription and usage
    plan text not null default 'free'
        constraint users_plan_fkey references subscription_limits (plan) on update cascade,
    monthly_request_limit_override integer
        constraint users_request_limit_override_non_negative
            check (monthly_request_limit_override >= 0),
    usage_period_start date not null default usage_period_of(now())
        constraint users_usage_period_is_month_start
            check (extract(day from usage_period_start) = 1),
    period_request_count integer not null default 0
        constraint users_period_request_count_non_negative check (period_request_count >= 0),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create unique index users_username_key on users (lower(username));
create index users_plan on users (plan);
-- incremental readers (the warehouse sync) page through users by updated_at
create index users_updated_at on users (updated_at);

comment on table users is 'Platform users, one per normalised e-mail.';
comment on column users.usage_multiplier is
    'Multiplies the plan''s monthly request limit: +0.02 per completed referral, at most 2.00.';
comment on column users.bonus_credits is
    'Extra API requests per usage period, on top of plan limit x multiplier (+10 per referral).';
comment on column users.monthly_request_limit_override is
    'Replaces the plan''s monthly_request_limit for this user (negotiated deals); NULL: the plan''s.';
comment on column users.usage_period_start is
    'The period period_request_count belongs to; a read in a later period must treat it as '
    'zero (see user_usage_overview): no cron job resets it.';
comment on column users.period_request_count is
    'Requests admitted by admit_api_call in usage_period_start, counted against the limit '
    '(admins may reset it; monthly_usage_summary keeps what was recorded).';

-- Metering (admit_api_call, admin resets) writes only the usage counters: that is not an edit
-- of the user, and stamping updated_at on every API call would make consumers that read users
-- incrementally by updated_at re-read every active user all day.
create function users_set_updated_at() returns trigger
    language plpgsql
as $$
declare
    metering constant text[] := array['usage_period_start', 'period_request_count', 'updated_at'];
begin
    if to_jsonb(new) - metering is distinct from to_jsonb(old) - metering then
        new.updated_at := now();
    end if;
    return new;
end
$$;

create trigger users_updated_at before update on users
    for each row execute function users_set_updated_at();
