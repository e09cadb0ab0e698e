-- One table per source record type (SPEC §3.1). Every row points at its users row, is unique
-- on the source's external id (or on row_hash, SHA-256 of scope and row content, for sources
-- without ids), keeps the raw record, and is rewritten only when content_hash changes. A full
-- sync that no longer sees a row sets deleted_at; rows are never physically deleted.
-- last_synced is when the row's content was last written (a re-sync with no change writes
-- nothing; sync_log says when the source was last confirmed).

-- The bookkeeping columns are the same for every source; only the typed columns differ.
-- No index on user_id: the foreign key only needs users' primary key, and an index per
-- source table costs ~15 % of load throughput; add one when a query needs rows by user.
create or replace procedure pg_temp.create_source_table(
    table_name text, key_column text, key_type text, typed_columns text, description text
)
language plpgsql as $$
begin
    execute format(
        'create table %I ('
        '    id            bigint generated always as identity primary key,'
        '    %I            %s not null unique,'
        '    user_id       uuid not null references users (id),'
        '    email         text not null,'
        '    %s,'
        '    raw           jsonb not null,'
        '    content_hash  bytea not null,'
        '    first_seen    timestamptz not null default now(),'
        '    last_synced   timestamptz not null default now(),'
        '    deleted_at    timestamptz'
        ')',
        table_name, key_column, key_type, typed_columns
    );
    execute format('comment on table %I is %L', table_name, description);
end
$$;

call pg_temp.create_source_table(
    'whop_payments', 'external_id', 'text',
    $columns$
    whop_user_id text,
    membership_id text,
    product_id text,
    status text,
    currency text,
    amount numeric,
    amount_usd numeric,
    refunded_amount numeric,
    occurred_at timestamptz not null,
    paid_at timestamptz
    $columns$,
    'Whop payments (API v1/v2/v5): amount in the payment''s currency and in USD when known.'
);

call pg_temp.create_source_table(
    'whop_memberships', 'external_id', 'text',
    $columns$
    whop_user_id text,
    product_id text,
    plan_id text,
    status text,
    occurred_at timestamptz not null,
    expires_at timestamptz
    $columns$,
    'Whop memberships.'
);

call pg_temp.create_source_table(
    'whop_users', 'external_id', 'text',
    $columns$
    username text,
    occurred_at timestamptz
    $columns$,
    'Whop users.'
);

call pg_temp.create_source_table(
    'ghl_contacts', 'external_id', 'text',
    $columns$
    location_id text not null,
    first_name text,
    last_name text,
    phone text,
    tags text[],
    contact_source text,
    occurred_at timestamptz,
    source_updated_at timestamptz
    $columns$,
    'GoHighLevel (LeadConnector v2) contacts.'
);

call pg_temp.create_source_table(
    'sheet_rows', 'row_hash', 'bytea',
    $columns$
    spreadsheet_id text not null,
    worksheet text not null,
    amount numeric,
    occurred_at timestamptz,
    source_url text
    $columns$,
    'Rows of configured Google Sheets; identity is the SHA-256 of spreadsheet, worksheet and row content.'
);

call pg_temp.create_source_table(
    'elective_rows', 'row_hash', 'bytea',
    $columns$
    product text,
    currency text,
    amount numeric,
    net_amount numeric,
    fees numeric,
    status text,
    order_type text,
    occurred_at timestamptz
    $columns$,
    'Rows of Elective CSV payment exports; identity is the SHA-256 of the row content.'
);

call pg_temp.create_source_table(
    'website_people', 'external_id', 'text',
    $columns$
    event_kind text not null,
    source_id text not null,
    occurred_at timestamptz
    $columns$,
    'People behind marketing-website events; external_id is ''<event_kind>:<row id>''.'
);

call pg_temp.create_source_table(
    'platform_users', 'external_id', 'text',
    $columns$
    username text,
    occurred_at timestamptz,
    source_updated_at timestamptz
    $columns$,
    'Users of the product platform.'
);

call pg_temp.create_source_table(
    'course_orders', 'external_id', 'text',
    $columns$
    status text,
    currency text,
    amount numeric,
    occurred_at timestamptz
    $columns$,
    'Orders of the course platform.'
);

call pg_temp.create_source_table(
    'course_enrollments', 'external_id', 'text',
    $columns$
    course_id text,
    status text,
    occurred_at timestamptz
    $columns$,
    'Enrollments of the course platform.'
);

alter table website_people add constraint website_people_event_kind
    check (event_kind in ('demo_request', 'vote', 'email_subscription', 'contact_submission'));
