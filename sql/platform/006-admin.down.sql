drop view admin_user_overview;
drop function admin_add_bonus_credits(uuid, integer, text);
drop function admin_reset_user_usage(uuid, text);
drop function assert_admin(text);
drop table admin_actions;
drop table admins;
