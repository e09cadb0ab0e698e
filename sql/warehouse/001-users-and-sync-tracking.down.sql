drop table sync_rejects;
drop table sync_log;
drop table users;
