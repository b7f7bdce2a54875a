-- The dependencies runs wait for (a run's dependsOn, jobs/rundeps.go): a
-- row per run that waits and per dependency it waits for, copies of its
-- document's entries with no status while it is QUEUED, kept in step by
-- every write that may change them (storage/waits.go). A run with rows
-- here has its job unpublished on purpose: republish passes it over.
CREATE TABLE run_waits (
    depends_on TEXT NOT NULL,   -- the run waited for
    run_id     TEXT NOT NULL,   -- the run that waits
    PRIMARY KEY (depends_on, run_id)
) WITHOUT ROWID;
-- A run's own rows, to replace them and to tell that it waits.
CREATE INDEX run_waits_run ON run_waits (run_id);
