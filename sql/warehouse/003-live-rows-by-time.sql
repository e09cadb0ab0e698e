-- A dated source syncs one day at a time, and each day's sync soft-deletes the live rows of
-- that day it no longer saw. Without an index on the source's time, that statement reads the
-- whole table once per partition: a year's backfill of a million-row table reads it 365
-- times. Partial (live rows only), because deleted rows are never candidates.
-- The cost is one more index to maintain on load; times mostly arrive in order, so inserts
-- land on the index's rightmost page.
create index whop_payments_live_occurred_at on whop_payments (occurred_at) where deleted_at is null;
create index whop_memberships_live_occurred_at on whop_memberships (occurred_at) where deleted_at is null;
create index whop_users_live_occurred_at on whop_users (occurred_at) where deleted_at is null;
create index ghl_contacts_live_occurred_at on ghl_contacts (occurred_at) where deleted_at is null;
create index website_people_live_occurred_at on website_people (event_kind, occurred_at) where deleted_at is null;
create index platform_users_live_occurred_at on platform_users (occurred_at) where deleted_at is null;
create index course_orders_live_occurred_at on course_orders (occurred_at) where deleted_at is null;
create index course_enrollments_live_occurred_at on course_enrollments (occurred_at) where deleted_at is null;
