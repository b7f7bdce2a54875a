-- Columns the server's sweep finds runs by, so that a sweep need not read
-- every run not ended (storage/sweep.go). Like status and attempt they are
-- copies of doc fields, kept in step by every write: worker is the worker
-- of the current attempt ('' until one reports it), deadline the run's
-- spec.deadline in unix nanoseconds (NULL for none). Runs that ended before
-- this migration keep '' and NULL: no lookup of the sweep reads them.
ALTER TABLE runs ADD COLUMN worker TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN deadline INTEGER;
UPDATE runs SET
    worker   = COALESCE(json_extract(CAST(doc AS TEXT), '$.attempts[#-1].worker'), ''),
    deadline = CAST(unixepoch(json_extract(CAST(doc AS TEXT), '$.spec.deadline'), 'subsec') * 1000000000 AS INTEGER)
WHERE status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELED');

-- The runs of one worker, and the workers that have runs, among runs
-- started and not ended.
CREATE INDEX runs_worker ON runs (worker) WHERE status IN ('STARTING', 'RUNNING');
-- Queued runs by deadline, to fail those past it.
CREATE INDEX runs_queued_deadline ON runs (deadline) WHERE status = 'QUEUED' AND deadline IS NOT NULL;
-- Queued runs whose current attempt's job is not yet published (republish).
CREATE INDEX runs_unpublished ON runs (run_id) WHERE status = 'QUEUED' AND published_attempt < MAX(attempt, 1);
