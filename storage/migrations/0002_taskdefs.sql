-- Task definition registry: one row per revision of a family. doc is the
-- JSON of jobs.TaskDefinition (revision included); status is ACTIVE or
-- INACTIVE (deregistered: no new runs, existing runs unaffected).
CREATE TABLE taskdefs (
    family          TEXT    NOT NULL,
    revision        INTEGER NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'ACTIVE',
    registered_at   INTEGER NOT NULL,           -- unix nanoseconds
    deregistered_at INTEGER,                    -- NULL while ACTIVE
    doc             BLOB    NOT NULL,
    PRIMARY KEY (family, revision)
) WITHOUT ROWID;

-- The latest ACTIVE revision of a family, and listings by status.
CREATE INDEX taskdefs_status ON taskdefs (status, family, revision);
