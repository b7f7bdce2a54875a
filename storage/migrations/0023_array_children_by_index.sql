-- An array run's children by index (0, 1, 2, ..., 10, ...), for listing
-- them in that order a page at a time (storage.RunFilter.ArrayJobID): by
-- id text, the order of the primary key, PARENT-10 comes before PARENT-2,
-- and the first page of an array of 10,000 was not children 0 to 99. The
-- keys are the expressions of the triggers of migration 0022, the parent's
-- id and the child's index, on runs whose id has a '-'
-- (jobs.ArraySeparator): every run but an array's children only has the
-- WHERE tested as it is inserted, and no update of a run writes its id.
CREATE INDEX runs_array_children ON runs (
    substr(run_id, 1, instr(run_id, '-') - 1),
    CAST(substr(run_id, instr(run_id, '-') + 1) AS INTEGER)
) WHERE instr(run_id, '-') > 0;
