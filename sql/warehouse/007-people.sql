-- Probable duplicates and the operator's decisions on them (issue 16). The users table stays
-- one row per email (SPEC §3.2): two emails of one person are never merged; an accepted link
-- groups them into one person (the `people` view, sql/views/people.sql).
--
-- Users are never deleted (a sync upserts them by email and soft-deletes only source rows),
-- so every table below references users without a cascade: a decision can never vanish
-- with a user. Pairs are stored once, smaller user id first.

-- The latest scoring's candidates. Storing a new scoring replaces the pairs nobody decided
-- on yet; a decided pair's row stays, whatever the new scoring says.
create table user_match_candidates (
    user_a       uuid not null references users (id),
    user_b       uuid not null references users (id),
    probability  double precision not null,
    agreed       text[] not null default '{}',
    disagreed    text[] not null default '{}',
    scored_at    timestamptz not null default now(),
    primary key (user_a, user_b),
    constraint user_match_candidates_ordered check (user_a < user_b),
    constraint user_match_candidates_probability check (probability between 0 and 1)
);

comment on table user_match_candidates is
    'Pairs of users scored as probably one person; pending unless user_links holds a decision';
comment on column user_match_candidates.agreed is 'fields whose values agreed (name, phone, ...)';

-- The current decision per pair: accepted (one person) or rejected (never proposed again).
-- An undo deletes the row (the pair is pending again); user_link_decisions keeps every step.
create table user_links (
    user_a       uuid not null references users (id),
    user_b       uuid not null references users (id),
    decision     text not null,
    probability  double precision,
    decided_by   text not null,
    decided_at   timestamptz not null default now(),
    reason       text not null,
    primary key (user_a, user_b),
    constraint user_links_ordered check (user_a < user_b),
    constraint user_links_decision check (decision in ('accepted', 'rejected')),
    constraint user_links_decided_by check (btrim(decided_by) <> ''),
    constraint user_links_reason check (btrim(reason) <> '')
);

comment on column user_links.probability is
    'the candidate''s probability when decided; null for a pair the operator linked unscored';

-- The people view walks accepted links from both ends.
create index user_links_accepted_b on user_links (user_b, user_a) where decision = 'accepted';

-- Every decision ever taken, undo included: append-only (a trigger refuses updates and deletes).
create table user_link_decisions (
    id           bigint generated always as identity primary key,
    user_a       uuid not null references users (id),
    user_b       uuid not null references users (id),
    decision     text not null,
    previous     text,
    probability  double precision,
    decided_by   text not null,
    decided_at   timestamptz not null default now(),
    reason       text not null,
    constraint user_link_decisions_ordered check (user_a < user_b),
    constraint user_link_decisions_decision check (decision in ('accepted', 'rejected', 'undone'))
);

comment on column user_link_decisions.previous is 'the pair''s decision before this one (null: pending)';

create index user_link_decisions_pair on user_link_decisions (user_a, user_b, id);

create function user_link_decisions_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'user_link_decisions is append-only: a decision is reversed by a new one'
        using errcode = 'integrity_constraint_violation';
end
$$;

create trigger user_link_decisions_append_only
    before update or delete or truncate on user_link_decisions
    for each statement execute function user_link_decisions_append_only();
