drop table messages;
drop table connections;
drop table group_members;
drop table groups;
