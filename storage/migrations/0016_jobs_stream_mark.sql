-- Marks the server keeps of the queue beside the store, by name. The one
-- there is now, jobs_stream, names the JetStream stream (GANTRY_JOBS, by
-- its creation time) that the jobs of runs marked published went to: a
-- server that finds another stream (a restore onto a new JetStream, the
-- stream deleted, a NATS cluster rebuilt) knows those jobs are gone and
-- publishes them again (storage/jobsstream.go).
CREATE TABLE queue_marks (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
