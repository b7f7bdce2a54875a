-- Pools (jobs/pool.go): a name and a number of slots, 0 meaning paused.
-- Times in unix nanoseconds.
CREATE TABLE pools (
    name       TEXT    PRIMARY KEY,
    slots      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The runs of pools that have not ended, by pool and state
-- (jobs.PoolState: 1 waits for its dependsOn first, 2 waits for a slot,
-- 3 holds one), copies of what each run's document says, written in the
-- same transaction as the document (storage/pools.go): a crash leaves
-- both or neither. A run leaves it when it ends. The slots in use and the
-- runs waiting are counted from here, and the next runs to release read
-- in order (rank: priority, 0 high to 2 low; then run id, which sorts by
-- submission time): index seeks, however many runs are recorded. A run
-- in state 2 has its job unpublished on purpose: republish passes it
-- over. Runs without a pool have no row.
CREATE TABLE pool_runs (
    pool   TEXT    NOT NULL,
    state  INTEGER NOT NULL,
    rank   INTEGER NOT NULL,
    run_id TEXT    NOT NULL,
    PRIMARY KEY (pool, state, rank, run_id)
) WITHOUT ROWID;
-- A run's own row, to replace it and to tell that it waits for a slot.
CREATE UNIQUE INDEX pool_runs_run ON pool_runs (run_id);
