-- One name per feed (issue 25): a feed's sessions and rejects are recorded under its asset's
-- name, and a source's name-priority family is its folder's name. What is stored under the
-- old names is renamed, so its history reads on under the new ones.
-- The website's feeds were recorded under the event kind's name (website_vote).
update sync_log set source = source || 's'
where source in ('website_vote', 'website_demo_request', 'website_email_subscription',
                 'website_contact_submission');
update sync_rejects set source = source || 's'
where source in ('website_vote', 'website_demo_request', 'website_email_subscription',
                 'website_contact_submission');

-- Google Sheets' family was `sheet`; course activity ranked in the course platform's family.
-- (Each sheet's sessions, recorded as `sheet_rows` with the worksheet in their scope, are
-- renamed by the sheet's own asset before its next session: only sources.toml knows which
-- asset a worksheet is; sources/sheets/adopt_history.sql.)
update users set email_source = 'sheets' where email_source = 'sheet';
update users set name_source = 'sheets' where name_source = 'sheet';
update users set username_source = 'sheets' where username_source = 'sheet';
update users set email_source = 'course_activity'
where email_source = 'course' and email_source_record like 'course\_activity:%';
update users set name_source = 'course_activity'
where name_source = 'course' and name_source_record like 'course\_activity:%';
update users set username_source = 'course_activity'
where username_source = 'course' and username_source_record like 'course\_activity:%';
update user_field_sources set family = 'sheets' where family = 'sheet';
update user_field_sources set family = 'course_activity' where source_table = 'course_activity';

comment on column users.name_source is 'source (ghl, whop, sheets, ...) whose value won by priority';
