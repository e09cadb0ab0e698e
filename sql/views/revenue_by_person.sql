-- Revenue per person over all time, one row per currency (never converted): revenue per user
-- summed over the users of one person (the people view: users joined by accepted links), so
-- a person who paid from two addresses shows once. A user without links is its own person.
-- group: finance
-- upstream: revenue_by_user_day, people
create or replace view revenue_by_person as
select
    p.person_id,
    d.currency,
    array_agg(distinct d.user_id order by d.user_id) as user_ids,
    array_agg(distinct d.email order by d.email) as emails,
    sum(d.items)::bigint as items,
    sum(d.gross) as gross,
    sum(d.refunded) as refunded,
    sum(d.net) as net,
    array_agg(distinct d.source order by d.source) as sources,
    min(d.day) as first_day,
    max(d.day) as last_day
from revenue_by_user_day d
join people p on p.user_id = d.user_id
group by p.person_id, d.currency;

comment on view revenue_by_person is
    'Revenue per person (users joined by accepted links) and currency (see sql/views/revenue_by_person.sql)';
