-- One table per source record type (SPEC §3.1). Every row points at its users row, is unique
-- on the source's external id (or on row_hash, SHA-256 of the row content, for sources without
-- ids), keeps the raw record, and is rewritten only when content_hash changes. A full sync
-- that no longer sees a row sets deleted_at; rows are never physically deleted.
-- last_synced is when the row's content was last written (a re-sync with no change writes
-- nothing; sync_log says when the source was last confirmed).

-- Whop payments (API v1/v2/v5): amount in the payment's currency and in USD when known.
create table whop_payments (
    id            bigint generated always as identity primary key,
    external_id   text not null unique,
    user_id       uuid not null references users (id),
    email         text not null,
    whop_user_id     text,
    membership_id    text,
    product_id       text,
    status           text,
    currency         text,
    amount           numeric,
    amount_usd       numeric,
    refunded_amount  numeric,
    occurred_at      timestamptz not null,
    paid_at          timestamptz,
    raw           jsonb not null,
    content_hash  bytea not null,
    first_seen    timestamptz not null default now(),
    last_synced   timestamptz not null default now(),
    deleted_at    timestamptz
);

create index whop_payments_user_id on whop_payments (user_id);

-- Whop memberships.
create table whop_memberships (
    id            bigint generated always as identity primary key,
    external_id   text not null unique,
    user_id       uuid not null references users (id),
    email         text not null,
    whop_user_id  text,
    product_id    text,
    plan_id       text,
    status        text,
    occurred_at   timestamptz not null,
    expires_at    timestamptz,
    raw           jsonb not null,
    content_hash  bytea not null,
    first_seen    timestamptz not null default now(),
    last_synced   timestamptz not null default now(),
    deleted_at    timestamptz
);

create index whop_memberships_user_id on whop_memberships (user_id);

-- Whop users.
create table whop_users (
    id            bigint generated always as identity primary key,
    external_id   text not null unique,
    user_id       uuid not null references users (id),
    email         text not null,
    username      text,
    occurred_at   timestamptz,
    raw           jsonb not null,
    content_hash  bytea not null,
    first_seen    timestamptz not null default now(),
    last_synced   timestamptz not null default now(),
    deleted_at    timestamptz
);

create index whop_users_user_id on whop_users (user_id);

-- GoHighLevel (LeadConnector v2) contacts.
create table ghl_contacts (
    id            bigint generated always as identity primary key,
    external_id   text not null unique,
    user_id       uuid not null references users (id),
    email         text not null,
    location_id        text not null,
    first_name         text,
    last_name          text,
    phone              text,
    tags               text[],
    contact_source     text,
    occurred_at        timestamptz,
    source_updated_at  timestamptz,
    raw           jsonb not null,
    content_hash  bytea not null,
    first_seen    timestamptz not null default now(),
    last_synced   timestamptz not null default now(),
    deleted_at    timestamptz
);

create index ghl_contacts_user_id on ghl_contacts (user_id);

-- Rows of configured Google Sheets; identity is the SHA-256 of spreadsheet, worksheet and row content.
create table sheet_rows (
    id            bigint generated always as identity primary key,
    row_hash      bytea not null unique,
    user_id       uuid not null references users (id),
    email         text not null,
    spreadsheet_id  text not null,
    worksheet       text not null,
    amount          numeric,
    occurred_at     timestamptz,
    source_url      text,
    raw           jsonb not null,
    content_hash  bytea not null,
    first_seen    timestamptz not null default now(),
    last_synced   timestamptz not null default now(),
    deleted_at    timestamptz
);

create index sheet_rows_user_id on sheet_rows (user_id);

-- Rows of Elective CSV payment exports; identity is the SHA-256 of the row content.
create table elective_rows (
    id            bigint generated always as identity primary key,
    row_hash      bytea not null unique,
    user_id       uuid not null references users (id),
    email         text not null,
    product       text,
    currency      text,
    amount        numeric,
    net_amount    numeric,
    fees          numeric,
    status        text,
    order_type    text,
    occurred_at   timestamptz,
    raw           jsonb not null,
    content_hash  bytea not null,
    first_seen    timestamptz not null default now(),
    last_synced   timestamptz not null default now(),
    deleted_at    timestamptz
);

create index elective_rows_user_id on elective_rows (user_id);

-- People behind marketing-website events; external_id is '<event_kind>:<row id>'.
create table website_people (
    id            bigint generated always as identity primary key,
    external_id   text not null unique,
    user_id       uuid not null references users (id),
    email         text not null,
    event_kind    text not null,
    source_id     text not null,
    occurred_at   timestamptz,
    raw           jsonb not null,
    content_hash  bytea not null,
    first_seen    timestamptz not null default now(),
    last_synced   timestamptz not null default now(),
    deleted_at    timestamptz
);

create index website_people_user_id on website_people (user_id);

-- Users of the product platform.
create table platform_users (
    id            bigint generated always as identity primary key,
    external_id   text not null unique,
    user_id       uuid not null references users (id),
    email         text not null,
    username           text,
    occurred_at        timestamptz,
    source_updated_at  timestamptz,
    raw           jsonb not null,
    content_hash  bytea not null,
    first_seen    timestamptz not null default now(),
    last_synced   timestamptz not null default now(),
    deleted_at    timestamptz
);

create index platform_users_user_id on platform_users (user_id);

-- Orders of the course platform.
create table course_orders (
    id            bigint generated always as identity primary key,
    external_id   text not null unique,
    user_id       uuid not null references users (id),
    email         text not null,
    status        text,
    currency      text,
    amount        numeric,
    occurred_at   timestamptz,
    raw           jsonb not null,
    content_hash  bytea not null,
    first_seen    timestamptz not null default now(),
    last_synced   timestamptz not null default now(),
    deleted_at    timestamptz
);

create index course_orders_user_id on course_orders (user_id);

-- Enrollments of the course platform.
create table course_enrollments (
    id            bigint generated always as identity primary key,
    external_id   text not null unique,
    user_id       uuid not null references users (id),
    email         text not null,
    course_id     text,
    status        text,
    occurred_at   timestamptz,
    raw           jsonb not null,
    content_hash  bytea not null,
    first_seen    timestamptz not null default now(),
    last_synced   timestamptz not null default now(),
    deleted_at    timestamptz
);

create index course_enrollments_user_id on course_enrollments (user_id);

alter table website_people add constraint website_people_event_kind check (event_kind in ('demo_request', 'vote', 'email_subscription', 'contact_submission'));
