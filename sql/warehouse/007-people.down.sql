drop view if exists revenue_by_person;  -- re-created by its asset (sql/views)
drop view if exists people;             -- re-created by its asset (sql/views)
drop table user_link_decisions;
drop function user_link_decisions_append_only();
drop table user_links;
drop table user_match_candidates;
