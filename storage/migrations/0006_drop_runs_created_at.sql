-- Nothing looks runs up by created_at (run ids sort by creation time, and
-- every listing orders by run_id): the index only cost a b-tree insert for
-- every run.
DROP INDEX IF EXISTS runs_created_at;
