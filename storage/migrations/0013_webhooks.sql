-- Webhooks (jobs/webhook.go, storage/webhooks.go). A hook's id, not its
-- name, keys its deliveries: a hook deleted and added again under the
-- same name does not inherit the old one's. doc is the hook's JSON
-- (filters), secret its signing key. The last_* columns and the counts
-- are what `gantry webhook ls` shows of its deliveries. Times in unix
-- nanoseconds.
CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    doc         BLOB    NOT NULL,
    secret      TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    last_at     INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER NOT NULL DEFAULT 0, -- HTTP status, 0 for none
    last_error  TEXT    NOT NULL DEFAULT '',
    delivered   INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0
);

-- The outbox: one row per hook and end to deliver, written in the same
-- transaction as the end it tells of, so a crash leaves both or neither.
-- A row leaves when its POST is answered 2xx, when it gives up (failed),
-- or with its hook. body is the exact JSON sent (and signed) each try.
CREATE TABLE webhook_deliveries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    hook_id    INTEGER NOT NULL,
    event_id   TEXT    NOT NULL,
    body       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    next_at    INTEGER NOT NULL,
    tries      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (hook_id, event_id)
);
-- The next deliveries due, in order.
CREATE INDEX webhook_deliveries_next ON webhook_deliveries (next_at);
