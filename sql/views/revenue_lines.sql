-- Revenue lines: one row per source record that carries revenue, in the record's own currency
-- (never converted). Whop: paid payments, their refunds subtracted (Whop keeps a refunded
-- payment `paid` and sets refunded_amount). Sheets: every row with an amount, in the currency
-- decided at load (its Currency cell, else its amount's symbol) or dollars. Elective: Approved
-- orders, in their Currency column (else their amounts' symbol) or dollars (the legacy export
-- has none). Course platform:
-- paid orders. Soft-deleted rows and rows without an amount carry no revenue. `day` is the
-- UTC date the money came in (Whop: paid_at, else created).
-- group: finance
-- upstream: whop_payments, sheet_*, elective_rows, course_orders
create or replace view revenue_lines as
select
    lines.source,
    lines.source_key,
    lines.user_id,
    lines.occurred_at,
    (lines.occurred_at at time zone 'UTC')::date as day,
    lines.currency,
    lines.gross,
    lines.refunded,
    lines.gross - lines.refunded as net
from (
    select
        'whop_payments'::text as source,
        p.external_id as source_key,
        p.user_id,
        coalesce(p.paid_at, p.occurred_at) as occurred_at,
        upper(btrim(p.currency)) as currency,
        p.amount as gross,
        coalesce(p.refunded_amount, 0) as refunded
    from whop_payments p
    where p.deleted_at is null and lower(btrim(p.status)) = 'paid' and p.amount is not null

    union all

    select
        'sheet_rows',
        encode(s.row_hash, 'hex'),
        s.user_id,
        s.occurred_at,
        coalesce(s.currency, 'USD'),
        s.amount,
        0
    from sheet_rows s
    where s.deleted_at is null and s.amount is not null

    union all

    select
        'elective_rows',
        encode(e.row_hash, 'hex'),
        e.user_id,
        e.occurred_at,
        coalesce(upper(nullif(btrim(e.currency), '')), 'USD'),
        e.amount,
        0
    from elective_rows e
    where e.deleted_at is null and lower(btrim(e.status)) = 'approved' and e.amount is not null

    union all

    select
        'course_orders',
        o.external_id,
        o.user_id,
        o.occurred_at,
        upper(btrim(o.currency)),
        o.amount,
        0
    from course_orders o
    where o.deleted_at is null and lower(btrim(o.status)) = 'paid' and o.amount is not null
) as lines;

comment on view revenue_lines is
    'One row per revenue-bearing source record, in its own currency (see sql/views/revenue_lines.sql)';
