-- The oldest queued run of each cluster and priority, for the metric
-- gantry_run_queue_oldest_seconds: a seek per cluster and priority at a
-- scrape, however many runs wait (storage/queuewait.go). Like status and
-- cluster, priority and queued_at are copies of doc fields, kept in step
-- by every write: priority is the run's (normal for runs stored before
-- priorities), queued_at when its current attempt went to the queue, in
-- unix nanoseconds (here to the millisecond, as SQLite reads times): a
-- retry's notBefore (the end of its backoff), else the attempt's
-- createdAt. Runs that ended before this migration keep the defaults: no
-- lookup reads them.
ALTER TABLE runs ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';
ALTER TABLE runs ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET
    priority  = COALESCE(NULLIF(json_extract(CAST(doc AS TEXT), '$.priority'), ''), 'normal'),
    queued_at = COALESCE(CAST(ROUND(unixepoch(COALESCE(
        json_extract(CAST(doc AS TEXT), '$.attempts[#-1].notBefore'),
        NULLIF(json_extract(CAST(doc AS TEXT), '$.attempts[#-1].createdAt'), '0001-01-01T00:00:00Z'),
        json_extract(CAST(doc AS TEXT), '$.createdAt')), 'subsec') * 1000) AS INTEGER) * 1000000, created_at)
WHERE status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELED');

CREATE INDEX runs_queue_wait ON runs (cluster, priority, queued_at) WHERE status = 'QUEUED';
