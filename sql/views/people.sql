-- People: one row per user with the person it belongs to. A person is a set of users joined,
-- transitively, by accepted links (user_links): a~b and b~c make one person of three. Its id
-- is the smallest user id among them, so it is the same on every read and for every reader;
-- a user without accepted links is a person of its own. The users stay one row per email.
-- group: people
-- upstream: users, user_match_candidates
create or replace view people as
with recursive edges (from_user, to_user) as (
    select user_a, user_b from user_links where decision = 'accepted'
    union all
    select user_b, user_a from user_links where decision = 'accepted'
),
reach (origin, member) as (
    select from_user, from_user from edges
    union
    select r.origin, e.to_user from reach r join edges e on e.from_user = r.member
),
linked (user_id, person_id, users) as (
    select origin, min(member::text)::uuid, count(*) from reach group by origin
)
select
    coalesce(l.person_id, u.id) as person_id,
    u.id as user_id,
    u.email,
    u.name,
    coalesce(l.users, 1) as person_users
from users u
left join linked l on l.user_id = u.id;

comment on view people is
    'One row per user and the person (connected accepted links) it belongs to (see sql/views/people.sql)';
