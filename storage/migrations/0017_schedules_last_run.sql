-- A schedule's last_run is the scheduled time of its latest fire that
-- stored or found a pipeline run, unix nanoseconds (0 before the first):
-- last_fire also moves past the times skipped (Forbid, a misfire skip),
-- missed or passed while suspended, and `gantry schedule ls` shows when
-- the schedule last ran. The server's firer keeps it up
-- (server/pipelines.go); here it is taken from the schedule's fires still
-- kept (trigger schedule) of its pipeline since the pipeline's first
-- version, to the millisecond as SQLite reads times.
ALTER TABLE schedules ADD COLUMN last_run INTEGER NOT NULL DEFAULT 0;
UPDATE schedules SET last_run = COALESCE((
    SELECT MAX(CAST(ROUND(unixepoch(json_extract(CAST(r.doc AS TEXT), '$.scheduledTime'), 'subsec') * 1000) AS INTEGER) * 1000000)
    FROM pipeline_runs r
    WHERE r.pipeline = schedules.name
      AND json_extract(CAST(r.doc AS TEXT), '$.trigger') = 'schedule'
      AND r.created_at >= (SELECT MIN(created_at) FROM pipelines WHERE name = schedules.name)), 0);
