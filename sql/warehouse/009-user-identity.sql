-- Each user's strong identity features as people matching compared them (normalised: a date
-- of birth as YYYYMMDD, a phone as its last ten digits), rewritten by every scoring. Automatic
-- acceptance never joins users whose values differ, and the people check fails on a person
-- holding two (issue 21): two people rarely share a date of birth and a phone.
create table user_identity (
    user_id      uuid primary key references users (id),
    birth_date   text,
    phone        text,
    scored_at    timestamptz not null default now()
);

comment on table user_identity is
    'Strong identity features per user as people matching normalised them (see lib/people)';
