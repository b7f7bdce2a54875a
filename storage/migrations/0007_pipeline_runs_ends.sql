-- The latest end of each pipeline by status, for the metric
-- gantry_pipeline_last_end_timestamp_seconds: one seek per pipeline and
-- status at a scrape, however many runs are recorded.
CREATE INDEX pipeline_runs_ends ON pipeline_runs (pipeline, status, finished_at);
