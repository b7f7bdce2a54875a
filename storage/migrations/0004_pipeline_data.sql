-- When each pipeline run ended and when the server deleted its stage files
-- from the object store (queue.DataBucket), unix nanoseconds, 0 for not
-- yet. finished_at copies the doc's finishedAt; runs that ended before
-- this migration count from their creation.
ALTER TABLE pipeline_runs ADD COLUMN finished_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pipeline_runs ADD COLUMN data_deleted_at INTEGER NOT NULL DEFAULT 0;
UPDATE pipeline_runs SET finished_at = created_at WHERE status IN ('SUCCEEDED', 'FAILED', 'CANCELED');
CREATE INDEX pipeline_runs_data ON pipeline_runs (data_deleted_at, finished_at);
