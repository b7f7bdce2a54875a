-- pool_runs state 4 (jobs.PoolKept): a run stopped while QUEUED after a
-- worker had taken its job keeps its slot, its run ended, until that
-- worker reports the attempt's end or the server's sweep finds it lost
-- (server/poolstop.go). It counts as in use, as state 3 does. The sweep
-- lists these runs every round: this index holds only them, so the look
-- costs a seek however many runs wait in pools.
CREATE INDEX pool_runs_kept ON pool_runs (run_id) WHERE state = 4;
