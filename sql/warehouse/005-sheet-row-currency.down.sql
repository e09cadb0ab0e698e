alter table sheet_rows drop column currency;
