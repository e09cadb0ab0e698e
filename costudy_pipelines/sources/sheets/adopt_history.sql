-- A worksheet's sessions and rejects from before issue 25 were recorded as `sheet_rows` with
-- the worksheet in their scope; they become its asset's (migration 010 cannot know which
-- asset a worksheet is: sources.toml says). Run before each session; after the first, a no-op.
with sessions as (
    update sync_log set source = %(feed)s
    where source = 'sheet_rows' and scope = %(scope)s
    returning 1
)
update sync_rejects set source = %(feed)s
where source = 'sheet_rows' and scope = %(scope)s
