drop table users;
drop function users_set_updated_at();
drop table subscription_limits;
drop function usage_period_of(timestamptz);
drop function set_updated_at();
drop domain email_address;
