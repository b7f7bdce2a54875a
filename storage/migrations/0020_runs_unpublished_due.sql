-- The unpublished QUEUED runs by queued_at (the end of a retry's backoff),
-- for the server's retry timer (server/retrywake.go), which asks at each
-- backoff's end which runs are due and when the next one is
-- (storage.DB.UnpublishedDue): a range and a seek, where runs_unpublished
-- (by run id) made each of them a read of every waiting run's row (a
-- quarter of a second with 10,000 retries of 8 KB waiting) at each
-- backoff's end.
CREATE INDEX runs_unpublished_due ON runs (queued_at) WHERE status = 'QUEUED' AND published_attempt < MAX(attempt, 1);
