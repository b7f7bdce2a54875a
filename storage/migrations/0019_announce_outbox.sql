-- The announcement outbox: a row per status change the server made of its
-- own accord (a stop, the sweep's end of a lost attempt, a run failed or
-- released for its dependencies or its pool, ...), written in the
-- change's transaction and deleted once the change's announcement on
-- gantry.events.runs.<run> is stored. A row left by a crash names a run
-- whose announcement may be lost: the next start compares the run's
-- stored status with the last message on its subject and publishes it
-- where they differ (server/announce.go). Its cost at start follows the
-- rows left, not the runs stored.
CREATE TABLE announce_outbox (
    id     INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL
);
