drop table course_activity;
