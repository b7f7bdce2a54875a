package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// The server's sweep looks runs up through the worker and deadline columns
// and the partial indexes of migration 0005, so that what it reads grows
// with what changed, not with the backlog of queued runs. The status terms
// of these queries are literals: SQLite uses a partial index only for a
// query that repeats its WHERE terms, and a bound parameter does not. They
// name their index (INDEXED BY): without statistics the planner would take
// runs_status, whose QUEUED range is the whole backlog, and with it a query
// the index cannot serve fails instead of scanning.

// sweepColumns are the values of the worker and deadline columns for r;
// every write of a run stores them with its document.
func sweepColumns(r *jobs.Run) (worker string, deadline any) {
	if a := r.Current(); a != nil {
		worker = a.Worker
	}
	if d := r.Spec.Deadline; d != nil {
		deadline = unixNano(*d)
	}
	return worker, deadline
}

// unixNano is t in unix nanoseconds, held to what an int64 can say (1678
// to 2262): a deadline past 2262 is kept as the latest instant, which no
// sweep reaches, where UnixNano wrapped it around into the past and the
// run was failed as past its deadline at once.
func unixNano(t time.Time) int64 {
	switch {
	case t.After(maxUnixNano):
		return math.MaxInt64
	case t.Before(minUnixNano):
		return math.MinInt64
	}
	return t.UnixNano()
}

var (
	minUnixNano = time.Unix(0, math.MinInt64)
	maxUnixNano = time.Unix(0, math.MaxInt64)
)

// RunsOfWorker returns the STARTING and RUNNING runs whose current attempt
// is on worker.
func (db *DB) RunsOfWorker(ctx context.Context, worker string) ([]jobs.Run, error) {
	runs, err := db.queryRuns(ctx, `SELECT doc FROM runs INDEXED BY runs_worker
		WHERE status IN ('STARTING', 'RUNNING') AND worker = ? ORDER BY run_id`, worker)
	if err != nil {
		return nil, fmt.Errorf("list runs of worker %s: %w", worker, err)
	}
	return runs, nil
}

// ActiveRun is a STARTING or RUNNING run as the sweep sees it: the worker
// and number of its current attempt.
type ActiveRun struct {
	RunID   string
	Worker  string
	Attempt int
}

// ActiveRuns returns the STARTING and RUNNING runs whose current attempt
// names a worker. It reads the runs_worker index and the rows it points
// to, not the runs' documents: its cost follows the runs that workers hold.
func (db *DB) ActiveRuns(ctx context.Context) ([]ActiveRun, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT run_id, worker, attempt FROM runs INDEXED BY runs_worker
		WHERE status IN ('STARTING', 'RUNNING') AND worker != ''`)
	if err != nil {
		return nil, fmt.Errorf("list running runs: %w", err)
	}
	defer rows.Close()
	var out []ActiveRun
	for rows.Next() {
		var r ActiveRun
		if err := rows.Scan(&r.RunID, &r.Worker, &r.Attempt); err != nil {
			return nil, fmt.Errorf("list running runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list running runs: %w", err)
	}
	return out, nil
}

// QueuedPastDeadline returns up to limit QUEUED runs whose deadline is at
// or before now, earliest deadline first.
func (db *DB) QueuedPastDeadline(ctx context.Context, now time.Time, limit int) ([]jobs.Run, error) {
	runs, err := db.queryRuns(ctx, `SELECT doc FROM runs INDEXED BY runs_queued_deadline
		WHERE status = 'QUEUED' AND deadline <= ? ORDER BY deadline LIMIT ?`, unixNano(now), limit)
	if err != nil {
		return nil, fmt.Errorf("list queued runs past their deadline: %w", err)
	}
	return runs, nil
}

// RequeueRun is UpdateRun that, when fn changes the run, also forgets that
// the job of its current attempt was published, in the same transaction:
// the server's republish (Unpublished) then publishes it.
// It reports whether fn changed the run.
func (db *DB) RequeueRun(ctx context.Context, id string, fn func(*jobs.Run) bool) (*jobs.Run, bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("requeue run %s: %w", id, err)
	}
	defer tx.Rollback()
	var doc []byte
	err = tx.StmtContext(ctx, db.stmts.selectRunDoc).QueryRowContext(ctx, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, fmt.Errorf("run %s: %w", id, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, false, fmt.Errorf("requeue run %s: %w", id, err)
	}
	r, err := decodeRun(doc)
	if err != nil {
		return nil, false, fmt.Errorf("requeue run %s: %w", id, err)
	}
	key, before := r.IdempotencyKey, r.Status
	if !fn(r) {
		r, err := decodeRun(doc)
		return r, false, err
	}
	if r.RunID != id || r.IdempotencyKey != key {
		return nil, false, fmt.Errorf("requeue run %s: the update changed the run's id or idempotency key", id)
	}
	if err := writeRun(ctx, tx.StmtContext(ctx, db.stmts.updateRun), r); err != nil {
		return nil, false, fmt.Errorf("requeue run %s: %w", id, err)
	}
	if err := syncWaits(ctx, tx, r); err != nil { // waits.go
		return nil, false, fmt.Errorf("requeue run %s: %w", id, err)
	}
	if err := syncPool(ctx, tx, r, false); err != nil { // pools.go
		return nil, false, fmt.Errorf("requeue run %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET published_attempt = MIN(published_attempt, ?) WHERE run_id = ?`,
		len(r.Attempts)-1, id); err != nil {
		return nil, false, fmt.Errorf("requeue run %s: %w", id, err)
	}
	outboxed, err := outboxRun(ctx, tx, db.hooksNow(), r, before) // webhooks.go
	if err != nil {
		return nil, false, fmt.Errorf("requeue run %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("requeue run %s: %w", id, err)
	}
	if outboxed {
		db.notifyOutbox()
	}
	return r, true, nil
}
