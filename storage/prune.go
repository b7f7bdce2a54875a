package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	json "github.com/goccy/go-json"
)

// Pruning the run history (the server's --run-retention). Runs and
// pipeline runs that ended long enough ago are deleted a batch at a time,
// each batch in its own short transaction, so that the API's writes and
// the application of events wait for one batch at most, never for the
// whole sweep.
//
// Rules, each kept within every transaction so that a sweep stopped
// between two batches (a crash, a shutdown) leaves a consistent store:
//   - nothing that has not ended is deleted;
//   - a stage's run goes only with its pipeline run, in the same
//     transaction (the runs of a retried stage's earlier tries too), and
//     a pipeline run goes only once every one of its stage runs has ended
//     long enough ago too: no pipeline run is left naming a run that is
//     gone;
//   - an array run's children go only with their parent (a child left
//     out of the counts would keep the parent from ending), in the same
//     transaction, whatever their number;
//   - a run's attempts live in its row and go with it.
//
// Both tables are walked in id order below an id bound the caller gives
// (ids sort by creation time, and a run that ended before a time was
// created before it), so a sweep reads the rows due and the few older
// ones not due yet (runs still going, or that ended later), not the
// whole history.

// Prune says what PruneHistory deletes.
type Prune struct {
	// EndedBefore: runs and pipeline runs that ended at or before it are
	// deleted.
	EndedBefore time.Time
	// RunsBelow and PipelineRunsBelow bound the ids looked at: every run
	// (pipeline run) that ended at or before EndedBefore must have an id
	// below them. The server's ids sort by creation time, so it gives the
	// smallest id of a run created at EndedBefore. Empty: no bound.
	RunsBelow, PipelineRunsBelow string
	// Batch is how many rows (runs and pipeline runs) a transaction
	// deletes at most, but for a pipeline run with more stage runs, which
	// goes whole; 0 means DefaultPruneBatch.
	Batch int
	// Committed, when set, is called after each batch's commit with what
	// it deleted.
	Committed func(PruneCount)
}

// DefaultPruneBatch is the rows a pruning transaction deletes at most.
const DefaultPruneBatch = 1000

// PruneCount counts what a prune deleted.
type PruneCount struct {
	Runs         int // stage runs included
	PipelineRuns int
}

func (c *PruneCount) add(o PruneCount) {
	c.Runs += o.Runs
	c.PipelineRuns += o.PipelineRuns
}

// noBound sorts after every id (ids are ASCII).
const noBound = "\U0010FFFF"

// PruneHistory deletes the runs and pipeline runs p selects, a batch per
// transaction, and returns how many it deleted, those of the batches
// committed before an error or ctx's end included.
func (db *DB) PruneHistory(ctx context.Context, p Prune) (PruneCount, error) {
	if p.Batch <= 0 {
		p.Batch = DefaultPruneBatch
	}
	if p.RunsBelow == "" {
		p.RunsBelow = noBound
	}
	if p.PipelineRunsBelow == "" {
		p.PipelineRunsBelow = noBound
	}
	var total PruneCount
	// Pipeline runs first, with their stage runs: the runs' walk then
	// finds fewer stage runs to pass over.
	steps := []func(ctx context.Context, tx *sql.Tx, p *Prune, after string) (PruneCount, string, bool, error){db.prunePipelineRuns}
	for _, st := range []string{"SUCCEEDED", "FAILED", "CANCELED"} {
		steps = append(steps, func(ctx context.Context, tx *sql.Tx, p *Prune, after string) (PruneCount, string, bool, error) {
			return db.pruneRuns(ctx, tx, p, st, after)
		})
	}
	for _, step := range steps {
		after := ""
		for done := false; !done; {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			var n PruneCount
			var err error
			n, after, done, err = db.pruneBatch(ctx, &p, step, after)
			if err != nil {
				return total, fmt.Errorf("prune run history: %w", err)
			}
			total.add(n)
			if p.Committed != nil && (n.Runs > 0 || n.PipelineRuns > 0) {
				p.Committed(n)
			}
		}
	}
	return total, nil
}

// pruneBatch runs one step of a prune in a transaction of its own.
func (db *DB) pruneBatch(ctx context.Context, p *Prune, step func(context.Context, *sql.Tx, *Prune, string) (PruneCount, string, bool, error),
	after string) (PruneCount, string, bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return PruneCount{}, after, false, err
	}
	defer tx.Rollback()
	n, next, done, err := step(ctx, tx, p, after)
	if err != nil {
		return PruneCount{}, after, false, err
	}
	if err := tx.Commit(); err != nil {
		return PruneCount{}, after, false, err
	}
	return n, next, done, nil
}

// ended is what pruning reads of a run's document.
type ended struct {
	FinishedAt *time.Time `json:"finishedAt"`
	// PoolSlotKept: a run stopped after a worker took its job still holds
	// its pool's slot (jobs.PoolKept); pruned, its pool_runs row would hold
	// it for good.
	PoolSlotKept *struct{} `json:"poolSlotKept"`
	// ArrayProperties.Size: an array run's parent, whose children go
	// with it (pruneArrayChildren).
	ArrayProperties *struct {
		Size int `json:"size"`
	} `json:"arrayProperties"`
	ArrayJobID string `json:"arrayJobId"`
	Spec       struct {
		Stage *struct {
			PipelineRunID string `json:"pipelineRunId"`
		} `json:"stage"`
	} `json:"spec"`
}

// endedBefore reports whether a run with status and document doc ended at
// or before t.
func endedBefore(status string, doc []byte, t time.Time) (ended, bool, error) {
	var e ended
	if err := json.Unmarshal(doc, &e); err != nil {
		return e, false, fmt.Errorf("decode run: %w", err)
	}
	switch status {
	case "SUCCEEDED", "FAILED", "CANCELED":
		return e, e.FinishedAt != nil && !e.FinishedAt.After(t) && e.PoolSlotKept == nil, nil
	}
	return e, false, nil
}

// prunePipelineRuns deletes, from the id after on, ended pipeline runs
// due whose stage runs are all due too, with those stage runs, up to
// p.Batch rows. It returns the last id it looked at and whether it
// looked at the last candidate.
func (db *DB) prunePipelineRuns(ctx context.Context, tx *sql.Tx, p *Prune, after string) (PruneCount, string, bool, error) {
	var n PruneCount
	cands, err := queryStrings(ctx, tx, `SELECT run_id FROM pipeline_runs
		WHERE run_id > ? AND run_id < ? AND status IN ('SUCCEEDED', 'FAILED', 'CANCELED')
		AND finished_at > 0 AND finished_at <= ? ORDER BY run_id LIMIT ?`,
		after, p.PipelineRunsBelow, p.EndedBefore.UnixNano(), p.Batch)
	if err != nil {
		return n, after, false, err
	}
	for i, id := range cands {
		if n.Runs+n.PipelineRuns >= p.Batch {
			return n, cands[i-1], false, nil
		}
		runs, err := stageRuns(ctx, tx, id)
		if err != nil {
			return n, after, false, err
		}
		due := true
		for _, r := range runs {
			var status string
			var doc []byte
			err := tx.QueryRowContext(ctx, `SELECT status, doc FROM runs WHERE run_id = ?`, r).Scan(&status, &doc)
			if errors.Is(err, sql.ErrNoRows) {
				continue // never stored (a crash before), or gone
			}
			if err != nil {
				return n, after, false, err
			}
			if _, ok, err := endedBefore(status, doc, p.EndedBefore); err != nil {
				return n, after, false, fmt.Errorf("run %s: %w", r, err)
			} else if !ok {
				due = false // a stage run still going, or ended since
				break
			}
			if waited, err := waitedFor(ctx, tx, r); err != nil {
				return n, after, false, err
			} else if waited {
				due = false // a run waits for this stage run (waits.go)
				break
			}
		}
		if !due {
			continue
		}
		for _, r := range runs {
			res, err := tx.StmtContext(ctx, db.stmts.deleteRun).ExecContext(ctx, r)
			if err != nil {
				return n, after, false, err
			}
			k, _ := res.RowsAffected()
			n.Runs += int(k)
		}
		// Its stage rows go with it (ON DELETE CASCADE).
		if _, err := tx.ExecContext(ctx, `DELETE FROM pipeline_runs WHERE run_id = ?`, id); err != nil {
			return n, after, false, err
		}
		n.PipelineRuns++
	}
	if len(cands) == 0 {
		return n, after, true, nil
	}
	return n, cands[len(cands)-1], len(cands) < p.Batch, nil
}

// stageRuns returns every run of the pipeline run's stages, from its
// document (the truth, which the stage rows copy): those of the current
// tries and those of the earlier tries a retry keeps, which only the
// document holds.
func stageRuns(ctx context.Context, tx *sql.Tx, id string) ([]string, error) {
	var doc []byte
	if err := tx.QueryRowContext(ctx, `SELECT doc FROM pipeline_runs WHERE run_id = ?`, id).Scan(&doc); err != nil {
		return nil, err
	}
	type runs []struct {
		RunID string `json:"runId"`
	}
	var pr struct {
		Stages []struct {
			Runs         runs `json:"runs"`
			EarlierTries []struct {
				Runs runs `json:"runs"`
			} `json:"earlierTries"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(doc, &pr); err != nil {
		return nil, fmt.Errorf("pipeline run %s: %w", id, err)
	}
	var out []string
	for _, st := range pr.Stages {
		for _, r := range st.Runs {
			out = append(out, r.RunID)
		}
		for _, try := range st.EarlierTries {
			for _, r := range try.Runs {
				out = append(out, r.RunID)
			}
		}
	}
	return out, nil
}

// pruneRuns deletes, from the id after on, up to p.Batch runs of status
// that ended at or before p.EndedBefore, stage runs excepted unless their
// pipeline run is gone (a crash between storing a stage run and recording
// it can leave one no pipeline run names). It returns the last id it
// looked at and whether it looked at the last candidate.
func (db *DB) pruneRuns(ctx context.Context, tx *sql.Tx, p *Prune, status, after string) (PruneCount, string, bool, error) {
	var n PruneCount
	rows, err := tx.QueryContext(ctx, `SELECT run_id, doc FROM runs INDEXED BY runs_status
		WHERE status = ? AND run_id > ? AND run_id < ? ORDER BY run_id LIMIT ?`, status, after, p.RunsBelow, p.Batch)
	if err != nil {
		return n, after, false, err
	}
	type cand struct {
		id  string
		doc []byte
	}
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.doc); err != nil {
			rows.Close()
			return n, after, false, err
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return n, after, false, err
	}
	for _, c := range cands {
		e, ok, err := endedBefore(status, c.doc, p.EndedBefore)
		if err != nil {
			return n, after, false, fmt.Errorf("run %s: %w", c.id, err)
		}
		if !ok {
			continue
		}
		if waited, err := waitedFor(ctx, tx, c.id); err != nil {
			return n, after, false, err
		} else if waited {
			continue // kept until the runs that wait for it are resolved (waits.go)
		}
		if e.Spec.Stage != nil && e.Spec.Stage.PipelineRunID != "" {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM pipeline_runs WHERE run_id = ?`, e.Spec.Stage.PipelineRunID).Scan(&one)
			if err == nil {
				continue // it goes with its pipeline run
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return n, after, false, err
			}
		}
		switch {
		case e.ArrayJobID != "":
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE run_id = ?`, e.ArrayJobID).Scan(&one)
			if err == nil {
				continue // it goes with its parent
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return n, after, false, err
			}
		case e.ArrayProperties != nil && e.ArrayProperties.Size > 0:
			k, ok, err := db.pruneArrayChildren(ctx, tx, c.id)
			if err != nil {
				return n, after, false, err
			}
			if !ok {
				continue
			}
			n.Runs += k
		}
		res, err := tx.StmtContext(ctx, db.stmts.deleteRun).ExecContext(ctx, c.id)
		if err != nil {
			return n, after, false, err
		}
		k, _ := res.RowsAffected() // 0: a child gone with its parent, listed before
		n.Runs += int(k)
	}
	if len(cands) == 0 {
		return n, after, true, nil
	}
	return n, cands[len(cands)-1].id, len(cands) < p.Batch, nil
}

// pruneArrayChildren deletes the children of the array run parent, which
// is due, and reports how many, or false if one of them must stay: a run
// waits for it, or it holds its pool's slot still (jobs.PoolKept). An
// array's children go only with their parent, whatever their number: a
// child pruned while its parent ran would never be counted as ended, and
// the parent never end; a parent pruned first would leave children no
// listing but gantry ps --array shows.
func (db *DB) pruneArrayChildren(ctx context.Context, tx *sql.Tx, parent string) (int, bool, error) {
	lo, hi := jobs.ArrayChildRange(parent)
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 WHERE EXISTS (SELECT 1 FROM run_waits WHERE depends_on >= ?1 AND depends_on < ?2)
		OR EXISTS (SELECT 1 FROM pool_runs INDEXED BY pool_runs_run WHERE run_id >= ?1 AND run_id < ?2)
		OR EXISTS (SELECT 1 FROM runs WHERE run_id >= ?1 AND run_id < ?2 AND status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELED'))`,
		lo, hi).Scan(&one)
	switch {
	case err == nil:
		return 0, false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return 0, false, fmt.Errorf("array run %s: %w", parent, err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE run_id >= ? AND run_id < ?`, lo, hi)
	if err != nil {
		return 0, false, fmt.Errorf("array run %s: %w", parent, err)
	}
	k, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `DELETE FROM array_counts WHERE parent = ?`, parent); err != nil {
		return 0, false, fmt.Errorf("array run %s: %w", parent, err)
	}
	return int(k), true, nil
}

// queryStrings returns the single string column of query's rows.
func queryStrings(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
