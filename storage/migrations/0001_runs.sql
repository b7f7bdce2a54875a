-- Runs. doc is the JSON of jobs.Run and the truth; the other columns are
-- copies of its fields for lookups, kept in step by every write.
CREATE TABLE runs (
    run_id            TEXT    PRIMARY KEY,
    status            TEXT    NOT NULL,
    cluster           TEXT    NOT NULL DEFAULT '',
    task_definition   TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,           -- unix nanoseconds
    idempotency_key   TEXT    UNIQUE,             -- NULL when the run has none
    attempt           INTEGER NOT NULL DEFAULT 0, -- number of the current attempt
    published_attempt INTEGER NOT NULL DEFAULT 0, -- last attempt whose job reached the queue
    doc               BLOB    NOT NULL
);

-- Listing by status, newest first (run ids sort by creation time), counting
-- by status and finding unpublished QUEUED runs all use this index.
CREATE INDEX runs_status ON runs (status, run_id);
CREATE INDEX runs_created_at ON runs (created_at);
