drop view if exists course_learning_progress;  -- re-created by its asset (sql/views)
drop table course_activity;
