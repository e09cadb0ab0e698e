-- The raw JSON of every source row (and of every reject) is compressed with lz4 instead of
-- pglz when the server has lz4: a nested API record (~2 KB of jsonb) is compressed as it is
-- written, and pglz made that the largest single cost of loading one (inserting 10,000 Whop
-- payments' raw jsonb on this 2-core machine under load: ~1.6 s with pglz, ~1.0 s with lz4,
-- 5 % more space; reads decompress faster too). A server built without lz4 (the embedded
-- one) keeps pglz: the block undoes itself and says so. Only values written from now on
-- change; a source table added later sets its own compression.
do $$
begin
    alter table course_activity alter column raw set compression lz4;
    alter table course_enrollments alter column raw set compression lz4;
    alter table course_orders alter column raw set compression lz4;
    alter table elective_rows alter column raw set compression lz4;
    alter table ghl_contacts alter column raw set compression lz4;
    alter table platform_users alter column raw set compression lz4;
    alter table sheet_rows alter column raw set compression lz4;
    alter table sync_rejects alter column raw set compression lz4;
    alter table website_people alter column raw set compression lz4;
    alter table whop_memberships alter column raw set compression lz4;
    alter table whop_payments alter column raw set compression lz4;
    alter table whop_users alter column raw set compression lz4;
exception when feature_not_supported then
    raise notice 'this server has no lz4 compression: raw columns keep pglz (%)', sqlerrm;
end
$$;
