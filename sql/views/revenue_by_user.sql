-- Revenue per user over all time, one row per currency the user paid in (never converted),
-- with the sources it came from and the first and last day of revenue: the daily view
-- summed over days and sources, so the two can never tell different stories.
-- group: finance
-- upstream: revenue_by_user_day
create or replace view revenue_by_user as
select
    d.user_id,
    d.email,
    d.currency,
    sum(d.items)::bigint as items,
    sum(d.gross) as gross,
    sum(d.refunded) as refunded,
    sum(d.net) as net,
    array_agg(distinct d.source order by d.source) as sources,
    min(d.day) as first_day,
    max(d.day) as last_day
from revenue_by_user_day d
group by d.user_id, d.email, d.currency;

comment on view revenue_by_user is
    'Revenue per user and currency over all time (see sql/views/revenue_by_user.sql)';
