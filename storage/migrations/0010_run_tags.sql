-- The tags of runs (jobs.Run.Tags), a copy of the document's for finding
-- runs by tag. A run's tags are fixed at submission: they are written
-- with it and go with it (ON DELETE CASCADE, so every deletion of runs,
-- --run-retention's among them, takes them in its own transaction).
-- A run without tags has no rows.
CREATE TABLE run_tags (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

-- gantry ps --tag team=data: the runs with a tag, newest first, read in
-- run id order from here and stopped at the page's end, however many runs
-- are recorded.
CREATE INDEX run_tags_key_value ON run_tags (key, value, run_id);
