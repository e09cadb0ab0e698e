-- The source's warehouse table: copy to sql/warehouse/NNN-<name>.sql (the next number) and
-- replace template_contacts with the source's name; its down migration, NNN-<name>.down.sql,
-- is `drop table <name>;`. The bookkeeping columns are those of every
-- source table (sql/warehouse/002-source-tables.sql); occurred_at is what its validator types.
create table template_contacts (
    id            bigint generated always as identity primary key,
    external_id   text not null unique,
    user_id       uuid not null references users (id),
    email         text not null,
    occurred_at   timestamptz,
    -- what the row offers its user (name, username), for recomputing users' fields
    candidate_name        text,
    candidate_username    text,
    candidate_observed_at timestamptz,
    raw           jsonb compression lz4 not null,  -- as every source table's (migration 008)
    content_hash  bytea not null,
    first_seen    timestamptz not null default now(),
    last_synced   timestamptz not null default now(),
    deleted_at    timestamptz
);
comment on table template_contacts is 'Contacts of the template source, by day of creation.';
-- A day's session soft-deletes inside its window: find the live rows of a day by index.
create index template_contacts_live_occurred_at on template_contacts (occurred_at)
    where deleted_at is null;
