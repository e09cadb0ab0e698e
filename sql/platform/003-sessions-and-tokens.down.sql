drop table user_tokens;
drop table user_sessions;
