-- Referrals: who brought whom, and complete_referral, which rewards the referrer once.

create table user_referrals (
    id uuid primary key default gen_random_uuid(),
    referrer_id uuid not null
        constraint user_referrals_referrer_fkey references users (id) on delete cascade,
    -- a user is referred at most once
    referred_user_id uuid not null
        constraint user_referrals_referred_user_key unique
        constraint user_referrals_referred_user_fkey references users (id) on delete cascade,
    referral_code text not null,
    status text not null default 'pending'
        constraint user_referrals_status check (status in ('pending', 'completed')),
    bonus_credits_awarded integer not null default 0,
    multiplier_awarded numeric(5, 2) not null default 0,
    created_at timestamptz not null default now(),
    completed_at timestamptz,
    constraint user_referrals_not_self check (referrer_id <> referred_user_id),
    constraint user_referrals_completed_at_when_completed
        check ((status = 'completed') = (completed_at is not null))
);

comment on table user_referrals is
    'One row per referred user: pending from sign-up with a code (optional), completed by '
    'complete_referral, which is when the referrer is rewarded.';
comment on column user_referrals.multiplier_awarded is
    'What the referrer''s usage_multiplier actually grew by (less than 0.02 at the 2.00 cap).';

create index user_referrals_referrer on user_referrals (referrer_id);

create function complete_referral(p_user_id uuid, p_referral_code text)
    returns table (
        referral_id uuid,
        referrer_id uuid,
        total_referrals integer,
        bonus_credits integer,
        usage_multiplier numeric
    )
    language plpgsql
as $$
declare
    credits_per_referral constant integer := 10;
    multiplier_per_referral constant numeric := 0.02;
    multiplier_cap constant numeric := 2.00;
    code constant text := upper(btrim(p_referral_code));
    referrer users;
    new_multiplier numeric;
    referral user_referrals;
    earlier user_referrals;
begin
    -- locked: concurrent referrals of one referrer add up from the value read here
    select * into referrer from users u where u.referral_code = code for no key update;
    if not found then
        raise exception using
            errcode = 'no_data_found',
            message = format('complete_referral: no user has referral code %L', p_referral_code);
    end if;
    if referrer.id = p_user_id then
        raise exception using
            errcode = 'invalid_parameter_value',
            message = format('complete_referral: user %s cannot use their own referral code %s',
                             p_user_id, code);
    end if;
    perform 1 from users u where u.id = p_user_id;
    if not found then
        raise exception using
            errcode = 'no_data_found',
            message = format('complete_referral: no user with id %s', p_user_id);
    end if;

    -- Completes a pending referral by the same referrer, or records a new completed one. The
    -- conditional upsert is the guard against double completion, concurrent calls included: a
    -- completed row, or one pending for another referrer, is left alone and nothing returns.
    new_multiplier := least(referrer.usage_multiplier + multiplier_per_referral, multiplier_cap);
    insert into user_referrals as r (referrer_id, referred_user_id, referral_code, status,
                                     completed_at, bonus_credits_awarded, multiplier_awarded)
    values (referrer.id, p_user_id, code, 'completed', now(), credits_per_referral,
            new_multiplier - referrer.usage_multiplier)
    on conflict (referred_user_id) do update
        set status = 'completed',
            completed_at = excluded.completed_at,
            referral_code = excluded.referral_code,
            bonus_credits_awarded = excluded.bonus_credits_awarded,
            multiplier_awarded = excluded.multiplier_awarded
        where r.status = 'pending' and r.referrer_id = excluded.referrer_id
    returning * into referral;
    if not found then
        select * into earlier from user_referrals r where r.referred_user_id = p_user_id;
        if earlier.status = 'completed' then
            raise exception using
                errcode = 'unique_violation',
                message = format('complete_referral: the referral of user %s was already '
                                 'completed on %s (referrer %s); it is rewarded only once',
                                 p_user_id, earlier.completed_at, earlier.referrer_id);
        end if;
        raise exception using
            errcode = 'unique_violation',
            message = format('complete_referral: user %s signed up with referral code %s of '
                             'user %s, not %s', p_user_id, earlier.referral_code,
                             earlier.referrer_id, code);
    end if;

    update users u set
        total_referrals = u.total_referrals + 1,
        bonus_credits = u.bonus_credits + credits_per_referral,
        usage_multiplier = new_multiplier
    where u.id = referrer.id
    returning u.* into referrer;

    return query select referral.id, referrer.id, referrer.total_referrals,
                        referrer.bonus_credits, referrer.usage_multiplier;
end
$$;

comment on function complete_referral(uuid, text) is
    'Completes the referral of p_user_id by the owner of p_referral_code: the referrer gets '
    '+10 bonus credits and +0.02 usage multiplier (capped at 2.00). Refuses an unknown code '
    '(no_data_found), the user''s own code (invalid_parameter_value) and a second completion '
    '(unique_violation).';
