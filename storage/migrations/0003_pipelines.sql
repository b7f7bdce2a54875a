-- Pipelines, one row per applied version; doc is the JSON of jobs.Pipeline.
CREATE TABLE pipelines (
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,          -- unix nanoseconds
    doc        BLOB    NOT NULL,
    PRIMARY KEY (name, version)
);

-- Pipeline runs. doc is the JSON of jobs.PipelineRun, stage states included,
-- and the truth; the other columns are copies for lookups.
CREATE TABLE pipeline_runs (
    run_id          TEXT    PRIMARY KEY,      -- pr-<ulid>
    pipeline        TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    idempotency_key TEXT    UNIQUE,           -- schedule/<name>/<time> for cron fires
    doc             BLOB    NOT NULL
);
CREATE INDEX pipeline_runs_pipeline ON pipeline_runs (pipeline, run_id);
CREATE INDEX pipeline_runs_status ON pipeline_runs (status, run_id);

-- Stage states: one row per stage of a pipeline run, a copy of the stage in
-- the run's doc, kept in step by every write.
CREATE TABLE pipeline_stages (
    pipeline_run_id TEXT    NOT NULL REFERENCES pipeline_runs (run_id) ON DELETE CASCADE,
    stage           TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    run_ids         TEXT    NOT NULL DEFAULT '',  -- space-separated runs of the stage
    PRIMARY KEY (pipeline_run_id, stage)
);

-- Schedules, named after their pipeline. last_fire is the latest scheduled
-- time handled (fired, skipped or missed), unix nanoseconds.
CREATE TABLE schedules (
    name      TEXT    PRIMARY KEY,
    suspended INTEGER NOT NULL DEFAULT 0,
    last_fire INTEGER NOT NULL DEFAULT 0
);
