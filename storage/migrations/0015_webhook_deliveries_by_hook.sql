-- The sender reads each hook's deliveries apart (server/webhooks.go), so
-- that a hook whose receiver is down waits out its backoff without its
-- backlog standing before the other hooks' deliveries: it asks for the
-- next due of one hook, a seek in this index. It replaces the index of
-- every hook's deliveries by time, which nothing reads in that order now.
DROP INDEX webhook_deliveries_next;
CREATE INDEX webhook_deliveries_hook_next ON webhook_deliveries (hook_id, next_at, id);
