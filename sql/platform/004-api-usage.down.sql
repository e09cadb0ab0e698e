drop function get_user_usage_stats(uuid);
drop view user_usage_overview;
drop table api_usage;
drop function refuse_update();
drop function api_usage_after_insert();
drop function effective_request_limit(users);
drop function base_request_limit(users);
drop table monthly_usage_summary;
