-- A hook's fails are its tries failed in a row since its last delivery
-- (0 after a 2xx): with last_at, the time of the latest, they give the
-- sender its backoff back at start (server/webhooks.go), which it kept
-- in memory only and a restart reset, trying every failing hook at once.
-- A hook whose last try failed before this migration counts one.
ALTER TABLE webhooks ADD COLUMN fails INTEGER NOT NULL DEFAULT 0;
UPDATE webhooks SET fails = 1 WHERE last_error != '';
