-- Admins (a table, never e-mails written into code), the admin functions that check it, the
-- audit trail of what they did, and the admins' overview of users.

create table admins (
    email email_address primary key,
    note text,
    added_at timestamptz not null default now()
);

comment on table admins is 'Who may call the admin_* functions: rows are granted by operators.';

create table admin_actions (
    id bigint generated always as identity primary key,
    -- no foreign key: the trail outlives the admin's row
    admin_email email_address not null,
    action text not null,
    user_id uuid
        constraint admin_actions_user_fkey references users (id) on delete set null,
    details jsonb not null default '{}'
        constraint admin_actions_details_object check (jsonb_typeof(details) = 'object'),
    performed_at timestamptz not null default now()
);

comment on table admin_actions is 'Audit trail: one row per successful admin function call.';

create index admin_actions_user on admin_actions (user_id, performed_at desc);

-- Returns the caller's normalised address, or raises insufficient_privilege.
create function assert_admin(p_admin_email text) returns text
    language plpgsql
    stable
as $$
declare
    caller constant text := lower(btrim(p_admin_email));
begin
    if caller is null or not exists (select 1 from admins a where a.email = caller) then
        raise exception using
            errcode = 'insufficient_privilege',
            message = format('%s is not an admin: admin functions are for addresses listed in '
                             'the admins table', coalesce(quote_literal(p_admin_email), 'NULL'));
    end if;
    return caller;
end
$$;

create function admin_reset_user_usage(p_user_id uuid, p_admin_email text) returns integer
    language plpgsql
as $$
declare
    caller constant text := assert_admin(p_admin_email);
    target constant users := locked_user(p_user_id, 'admin_reset_user_usage');
    cleared constant integer := case when target.usage_period_start = usage_period_of(now())
                                     then target.period_request_count else 0 end;
begin
    update users u set usage_period_start = usage_period_of(now()), period_request_count = 0
    where u.id = p_user_id;
    insert into admin_actions (admin_email, action, user_id, details)
    values (caller, 'reset_usage', p_user_id,
            jsonb_build_object('requests_cleared', cleared,
                               'period_start', usage_period_of(now())));
    return cleared;
end
$$;

comment on function admin_reset_user_usage(uuid, text) is
    'Sets the user''s requests counted against this period''s limit to zero; returns how many '
    'were cleared. monthly_usage_summary keeps the calls. Raises insufficient_privilege unless '
    'p_admin_email is in admins.';

create function admin_add_bonus_credits(p_user_id uuid, p_credits integer, p_admin_email text)
    returns integer
    language plpgsql
as $$
declare
    caller constant text := assert_admin(p_admin_email);
    target users;
begin
    if p_credits is null or p_credits <= 0 then
        raise exception using
            errcode = 'invalid_parameter_value',
            message = format('admin_add_bonus_credits: credits must be a positive number, not %s',
                             coalesce(p_credits::text, 'NULL'));
    end if;
    target := locked_user(p_user_id, 'admin_add_bonus_credits');
    update users u set bonus_credits = u.bonus_credits + p_credits
    where u.id = p_user_id
    returning u.* into target;
    insert into admin_actions (admin_email, action, user_id, details)
    values (caller, 'add_bonus_credits', p_user_id,
            jsonb_build_object('credits', p_credits, 'bonus_credits', target.bonus_credits));
    return target.bonus_credits;
end
$$;

comment on function admin_add_bonus_credits(uuid, integer, text) is
    'Adds bonus credits (extra requests per period) to a user; returns the new total. Raises '
    'insufficient_privilege unless p_admin_email is in admins.';

create view admin_user_overview as
select
    u.id as user_id,
    u.email,
    u.name,
    u.username,
    u.plan,
    u.created_at,
    exists (select 1 from admins a where a.email = u.email) as is_admin,
    usage.effective_request_limit,
    usage.requests_used,
    usage.requests_remaining,
    usage.requests_recorded,
    usage.last_call_at,
    u.referral_code,
    u.total_referrals,
    u.bonus_credits,
    u.usage_multiplier,
    referral.referrer_id as referred_by,
    sessions.active_sessions,
    tokens.token_providers
from users u
join user_usage_overview usage on usage.user_id = u.id
left join user_referrals referral
    on referral.referred_user_id = u.id and referral.status = 'completed'
cross join lateral (
    select count(*) as active_sessions
    from user_sessions s
    where s.user_id = u.id and s.revoked_at is null and s.expires_at > now()
) sessions
cross join lateral (
    select coalesce(array_agg(t.provider order by t.provider), '{}') as token_providers
    from user_tokens t
    where t.user_id = u.id
) tokens;

comment on view admin_user_overview is
    'One row per user for admins: plan, usage this period, referrals, active sessions and the '
    'providers whose keys the user stored (never the keys).';
