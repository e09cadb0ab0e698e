-- Revenue per user per UTC day, per currency and source: sum across sources within one
-- currency for a user's day; amounts of different currencies are never added together.
-- group: finance
-- upstream: revenue_lines, users
create or replace view revenue_by_user_day as
select
    l.day,
    l.user_id,
    u.email,
    l.currency,
    l.source,
    count(*) as items,
    sum(l.gross) as gross,
    sum(l.refunded) as refunded,
    sum(l.net) as net
from revenue_lines l
join users u on u.id = l.user_id
group by l.day, l.user_id, u.email, l.currency, l.source;

comment on view revenue_by_user_day is
    'Revenue per user, UTC day, currency and source (see sql/views/revenue_by_user_day.sql)';
