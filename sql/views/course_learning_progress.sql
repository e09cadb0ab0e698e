-- Learning progress per user per UTC day, from the course platform's activity: tests
-- completed, their average words per minute and best accuracy (NULL on a day without a test
-- that scored them). Days with activity but no test show 0 tests. Soft-deleted rows count
-- nowhere.
-- group: course
-- upstream: course_activity, users
create or replace view course_learning_progress as
select
    (a.occurred_at at time zone 'UTC')::date as day,
    a.user_id,
    u.email,
    count(*) as activities,
    count(*) filter (where a.activity_type = 'test_completion') as tests_completed,
    avg(a.wpm) filter (where a.activity_type = 'test_completion') as average_wpm,
    max(a.accuracy) filter (where a.activity_type = 'test_completion') as best_accuracy
from course_activity a
join users u on u.id = a.user_id
where a.deleted_at is null
group by 1, a.user_id, u.email;
