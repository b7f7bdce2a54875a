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

// Array runs (jobs/arrayrun.go) are a parent and its children, all rows of
// runs. The parent has no attempt (its attempt column is 0, which no other
// run has) and is stored marked published: no republish, at start or by
// the sweep, ever queues a job of it. Its children are the runs whose ids
// are in jobs.ArrayChildRange, read by the primary key: the parent's
// status is recomputed from their counts by status, which triggers keep
// in array_counts (migration 0022), and a run that is no array's costs
// the triggers' test of its id.

// CreateArrayRun inserts the array run parent and its children in one
// transaction, each child with a row of the announcement outbox
// (announce.go), the parent with one too: none of their QUEUEDs is vouched
// for by a published mark. If parent.IdempotencyKey is set and a run
// already has it, nothing is inserted and that run is returned with
// created=false. outboxes are the rows, the parent's first, then each
// child's in order.
func (db *DB) CreateArrayRun(ctx context.Context, parent *jobs.Run, children []*jobs.Run) (run *jobs.Run, created bool, outboxes []int64, err error) {
	docs := make([][]byte, len(children)+1)
	for i, r := range append([]*jobs.Run{parent}, children...) {
		if docs[i], err = json.Marshal(r); err != nil {
			return nil, false, nil, fmt.Errorf("create array run %s: %w", parent.RunID, err)
		}
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, nil, fmt.Errorf("create array run %s: %w", parent.RunID, err)
	}
	defer tx.Rollback()
	ctx = uninterrupted(ctx)
	if parent.IdempotencyKey != "" {
		var existing []byte
		err := tx.StmtContext(ctx, db.stmts.selectRunByKey).QueryRowContext(ctx, parent.IdempotencyKey).Scan(&existing)
		switch {
		case err == nil:
			old, err := decodeRun(existing)
			if err != nil {
				return nil, false, nil, fmt.Errorf("idempotency key %q: %w", parent.IdempotencyKey, err)
			}
			return old, false, nil, nil
		case !errors.Is(err, sql.ErrNoRows):
			return nil, false, nil, fmt.Errorf("create array run %s: %w", parent.RunID, err)
		}
	}
	notify := false
	for i, r := range append([]*jobs.Run{parent}, children...) {
		outboxed, row, err := db.insertRunTx(ctx, tx, r, docs[i], true)
		if err != nil {
			return nil, false, nil, fmt.Errorf("create array run %s: %s: %w", parent.RunID, r.RunID, err)
		}
		notify = notify || outboxed
		outboxes = append(outboxes, row)
	}
	// The parent has no job: marked as if it were published, it is none
	// of the unpublished runs that republish queues.
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET published_attempt = 1 WHERE run_id = ?`, parent.RunID); err != nil {
		return nil, false, nil, fmt.Errorf("create array run %s: %w", parent.RunID, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, nil, fmt.Errorf("create array run %s: %w", parent.RunID, err)
	}
	if notify {
		db.notifyOutbox()
	}
	return parent, true, outboxes, nil
}

// RecomputeArray sets the status of the array run id from its children's
// as stored (jobs.Run.SummarizeArray), in one transaction, with a row of
// the announcement outbox when its status changed. It returns the parent
// as stored, the status it had before, whether it changed it and the
// outbox row (0: none). A run that is no array's parent is returned
// unchanged.
func (db *DB) RecomputeArray(ctx context.Context, id string, now time.Time) (r *jobs.Run, before jobs.Status, changed bool, outbox int64, err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, "", false, 0, fmt.Errorf("recompute array run %s: %w", id, err)
	}
	defer tx.Rollback()
	var doc []byte
	err = tx.StmtContext(ctx, db.stmts.selectRunDoc).QueryRowContext(ctx, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", false, 0, fmt.Errorf("run %s: %w", id, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, "", false, 0, fmt.Errorf("recompute array run %s: %w", id, err)
	}
	if r, err = decodeRun(doc); err != nil {
		return nil, "", false, 0, fmt.Errorf("recompute array run %s: %w", id, err)
	}
	before = r.Status
	if !r.ArrayParent() {
		return r, before, false, 0, nil
	}
	counts, err := childCounts(ctx, tx, id)
	if err != nil {
		return nil, "", false, 0, fmt.Errorf("recompute array run %s: %w", id, err)
	}
	var failed *jobs.ArrayFailure
	if ended := counts[jobs.StatusSucceeded] + counts[jobs.StatusFailed] + counts[jobs.StatusCanceled]; !before.Terminal() &&
		ended == r.ArrayProperties.Size && counts[jobs.StatusSucceeded] < ended {
		// Only at the array's end, once: the child its stopped reason
		// names, the one read of its children.
		lo, hi := jobs.ArrayChildRange(id)
		if failed, err = firstFailedChild(ctx, tx, lo, hi); err != nil {
			return nil, "", false, 0, fmt.Errorf("recompute array run %s: %w", id, err)
		}
	}
	if !r.SummarizeArray(counts, failed, now.UTC()) {
		return r, before, false, 0, nil
	}
	outboxed, err := db.rewriteRunTx(ctx, tx, r, before)
	if err != nil {
		return nil, "", false, 0, fmt.Errorf("recompute array run %s: %w", id, err)
	}
	if r.Status != before {
		if outbox, err = insertAnnouncement(ctx, tx, id); err != nil {
			return nil, "", false, 0, fmt.Errorf("recompute array run %s: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, "", false, 0, fmt.Errorf("recompute array run %s: %w", id, err)
	}
	if outboxed {
		db.notifyOutbox()
	}
	return r, before, true, outbox, nil
}

// childCounts counts the children of the array run parent by status,
// from array_counts, which triggers keep as they change (migration 0022):
// a few rows, however many children it has.
func childCounts(ctx context.Context, tx *sql.Tx, parent string) (map[jobs.Status]int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT status, n FROM array_counts WHERE parent = ? AND n > 0`, parent)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[jobs.Status]int{}
	for rows.Next() {
		var (
			st string
			n  int
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		counts[jobs.Status(st)] = n
	}
	return counts, rows.Err()
}

// firstFailedChild is the child in [lo, hi) of the lowest index that
// failed or was canceled.
func firstFailedChild(ctx context.Context, tx *sql.Tx, lo, hi string) (*jobs.ArrayFailure, error) {
	rows, err := tx.QueryContext(ctx, `SELECT run_id, status, json_extract(CAST(doc AS TEXT), '$.exitCode') FROM runs
		WHERE run_id >= ? AND run_id < ? AND status IN ('FAILED', 'CANCELED')`, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var first *jobs.ArrayFailure
	firstIdx := -1
	for rows.Next() {
		var (
			id, st string
			code   sql.NullInt64
		)
		if err := rows.Scan(&id, &st, &code); err != nil {
			return nil, err
		}
		var idx int
		if _, err := fmt.Sscanf(id[len(lo):], "%d", &idx); err != nil {
			continue
		}
		if firstIdx >= 0 && idx >= firstIdx {
			continue
		}
		firstIdx = idx
		first = &jobs.ArrayFailure{RunID: id, Status: jobs.Status(st)}
		if code.Valid {
			c := int(code.Int64)
			first.ExitCode = &c
		}
	}
	return first, rows.Err()
}

// ActiveArrayRuns returns the ids of the array runs not ended: those
// whose status a restart recomputes, since their children may have ended
// while no server recomputed it.
func (db *DB) ActiveArrayRuns(ctx context.Context) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT run_id FROM runs INDEXED BY runs_status
		WHERE status IN ('QUEUED', 'STARTING', 'RUNNING') AND attempt = 0 ORDER BY run_id`)
	if err != nil {
		return nil, fmt.Errorf("list active array runs: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list active array runs: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
