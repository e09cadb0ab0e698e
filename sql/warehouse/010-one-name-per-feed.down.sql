-- The names before issue 25: the website's feeds by event kind, sheets' sessions as
-- `sheet_rows`, the `sheet` family, course activity in the course family.
update sync_log set source = left(source, -1)
where source in ('website_votes', 'website_demo_requests', 'website_email_subscriptions',
                 'website_contact_submissions');
update sync_rejects set source = left(source, -1)
where source in ('website_votes', 'website_demo_requests', 'website_email_subscriptions',
                 'website_contact_submissions');
update sync_log set source = 'sheet_rows' where target_table = 'sheet_rows';
update sync_rejects set source = 'sheet_rows'
where source like 'sheet\_%' and scope ? 'worksheet';

update users set email_source = 'sheet' where email_source = 'sheets';
update users set name_source = 'sheet' where name_source = 'sheets';
update users set username_source = 'sheet' where username_source = 'sheets';
update users set email_source = 'course' where email_source = 'course_activity';
update users set name_source = 'course' where name_source = 'course_activity';
update users set username_source = 'course' where username_source = 'course_activity';
update user_field_sources set family = 'sheet' where family = 'sheets';
update user_field_sources set family = 'course' where family = 'course_activity';

comment on column users.name_source is 'source family (ghl, whop, sheet, ...) whose value won by priority';
