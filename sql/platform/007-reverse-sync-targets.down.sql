drop table support_tickets;
drop table mailing_list;
drop table engagements;
drop table leads;
