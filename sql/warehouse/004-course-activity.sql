-- The course platform's MongoDB analytics (user_activity): one row per activity document,
-- tied to its person through the course platform's users (userId -> email). Same bookkeeping
-- columns as every source table of 002 (the load engine relies on them), written out here:
-- 002's helper procedure lived in pg_temp and is gone.
create table course_activity (
    id              bigint generated always as identity primary key,
    external_id     text not null unique,
    user_id         uuid not null references users (id),
    email           text not null,
    course_user_id  bigint not null,
    activity_type   text not null,
    wpm             numeric,
    accuracy        numeric,
    occurred_at     timestamptz not null,
    raw             jsonb not null,
    content_hash    bytea not null,
    first_seen      timestamptz not null default now(),
    last_synced     timestamptz not null default now(),
    deleted_at      timestamptz
);

comment on table course_activity is
    'Activity documents of the course platform''s MongoDB analytics; external_id is the document''s ObjectId (hex); wpm and accuracy are set for tests.';

-- Each day's sync soft-deletes the live rows of its window it no longer saw (see 003).
create index course_activity_live_occurred_at on course_activity (occurred_at) where deleted_at is null;
-- The learning-progress view reads a user's days.
create index course_activity_user_day on course_activity (user_id, occurred_at) where deleted_at is null;
