-- A sheet row's currency, decided when it is loaded: its Currency cell (the column is
-- configurable), else the symbol typed in its amount (€4.20 is euros), else none (the revenue
-- views count it in dollars). Before, the views read the Currency cell from the raw row and
-- a symbol was dropped, so €4.20 counted as 4.20 dollars.
alter table sheet_rows add column currency text;

comment on column sheet_rows.currency is
    'ISO code in upper case: the row''s Currency cell, else the one its amount''s symbol names '
    '(€ EUR, £ GBP, ¥ JPY, $ USD); null when neither (counted as USD).';

-- Rows loaded before keep their Currency cell (what the views read until now); a row's
-- symbol is read when the row is next written.
update sheet_rows s
set currency = (
    select upper(nullif(btrim(cell.value), ''))
    from jsonb_each_text(s.raw) as cell
    where lower(btrim(cell.key)) = 'currency'
    limit 1
)
where exists (select from jsonb_object_keys(s.raw) as k where lower(btrim(k)) = 'currency');
