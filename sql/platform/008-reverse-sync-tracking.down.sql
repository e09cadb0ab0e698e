drop table reverse_sync_webhook_inbox;
drop table reverse_sync_audit;
drop table reverse_sync_tracking;
