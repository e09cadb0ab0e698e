-- What each source row offers its user, so users' fields can be recomputed from the live rows
-- when the row that won a field is soft-deleted or changes (SPEC §3.2). Until now only the
-- winner was kept (users.name, name_source_record): when the GoHighLevel contact that gave a
-- name was deleted, the name stayed, its provenance pointing at a deleted row, and a Whop
-- rename lost to it forever.
--
-- candidate_name / candidate_username: the row's name and username as its validator read
-- them; candidate_observed_at: the record's own time (the newest wins within a family).
-- Rows loaded before this migration offer nothing until they are next written.
alter table whop_payments
    add column candidate_name text,
    add column candidate_username text,
    add column candidate_observed_at timestamptz;
alter table whop_memberships
    add column candidate_name text,
    add column candidate_username text,
    add column candidate_observed_at timestamptz;
alter table whop_users
    add column candidate_name text,
    add column candidate_username text,
    add column candidate_observed_at timestamptz;
alter table ghl_contacts
    add column candidate_name text,
    add column candidate_username text,
    add column candidate_observed_at timestamptz;
alter table sheet_rows
    add column candidate_name text,
    add column candidate_username text,
    add column candidate_observed_at timestamptz;
alter table elective_rows
    add column candidate_name text,
    add column candidate_username text,
    add column candidate_observed_at timestamptz;
alter table website_people
    add column candidate_name text,
    add column candidate_username text,
    add column candidate_observed_at timestamptz;
alter table platform_users
    add column candidate_name text,
    add column candidate_username text,
    add column candidate_observed_at timestamptz;
alter table course_orders
    add column candidate_name text,
    add column candidate_username text,
    add column candidate_observed_at timestamptz;
alter table course_enrollments
    add column candidate_name text,
    add column candidate_username text,
    add column candidate_observed_at timestamptz;
alter table course_activity
    add column candidate_name text,
    add column candidate_username text,
    add column candidate_observed_at timestamptz;

-- Which source tables offer candidates, under which family (for the priority) and key:
-- registered by every sync session of the table, read when fields are recomputed.
create table user_field_sources (
    source_table text primary key,
    family       text not null,
    key_column   text not null
        constraint user_field_sources_key_column check (key_column in ('external_id', 'row_hash'))
);

comment on table user_field_sources is
    'Source tables whose rows offer users'' name and username (candidate_* columns): the family '
    'ranks them by the name priority; written by the load engine''s sessions.';
