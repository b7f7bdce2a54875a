-- Array runs (AWS Batch's array jobs, jobs/arrayrun.go): a parent run with
-- no attempt (its attempt column is 0), marked published since it has no
-- job, and its children, runs PARENT-0 to PARENT-(N-1). A gantry of schema
-- version 21 would never end such a parent (nothing there recomputes its
-- status from its children's), and would queue it, with no attempt to
-- run, when it adopted a new jobs stream. It refuses a schema version
-- newer than its own, naming it (storage/migrate.go): so it now refuses
-- this store, which is to be opened by this gantry or a later one, or
-- replaced by a backup made before the upgrade.
--
-- array_counts counts each array's children by status, kept by the
-- triggers below in the transaction that changes a child, whatever writes
-- it: the parent's status is recomputed from these few rows, not by
-- counting its children (10,000 of them, at each child's change). A run
-- whose id has no '-' (jobs.ArraySeparator), every run but an array's
-- children, only has the WHEN tested.
CREATE TABLE array_counts (
    parent TEXT    NOT NULL,
    status TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (parent, status)
) WITHOUT ROWID;

CREATE TRIGGER array_child_inserted AFTER INSERT ON runs
WHEN instr(new.run_id, '-') > 0
BEGIN
    INSERT INTO array_counts (parent, status, n)
    VALUES (substr(new.run_id, 1, instr(new.run_id, '-') - 1), new.status, 1)
    ON CONFLICT (parent, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER array_child_moved AFTER UPDATE OF status ON runs
WHEN old.status <> new.status AND instr(new.run_id, '-') > 0
BEGIN
    UPDATE array_counts SET n = n - 1
    WHERE parent = substr(old.run_id, 1, instr(old.run_id, '-') - 1) AND status = old.status;
    INSERT INTO array_counts (parent, status, n)
    VALUES (substr(new.run_id, 1, instr(new.run_id, '-') - 1), new.status, 1)
    ON CONFLICT (parent, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER array_child_deleted AFTER DELETE ON runs
WHEN instr(old.run_id, '-') > 0
BEGIN
    UPDATE array_counts SET n = n - 1
    WHERE parent = substr(old.run_id, 1, instr(old.run_id, '-') - 1) AND status = old.status;
END;
