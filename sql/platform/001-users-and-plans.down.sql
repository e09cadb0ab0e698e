drop table users;
drop table subscription_limits;
drop function usage_period_of(timestamptz);
drop function set_updated_at();
drop domain email_address;
