drop table user_identity;
