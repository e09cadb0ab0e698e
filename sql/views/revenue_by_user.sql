-- Revenue per user over all time, one row per currency the user paid in (never converted),
-- with the sources it came from and the first and last day of revenue.
-- group: finance
-- upstream: revenue_lines, users
create or replace view revenue_by_user as
select
    l.user_id,
    u.email,
    l.currency,
    count(*) as items,
    sum(l.gross) as gross,
    sum(l.refunded) as refunded,
    sum(l.net) as net,
    array_agg(distinct l.source order by l.source) as sources,
    min(l.day) as first_day,
    max(l.day) as last_day
from revenue_lines l
join users u on u.id = l.user_id
group by l.user_id, u.email, l.currency;

comment on view revenue_by_user is
    'Revenue per user and currency over all time (see sql/views/revenue_by_user.sql)';
