package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// jobsStreamMark is the queue_marks row naming the jobs stream that the
// jobs of runs marked published are in.
const jobsStreamMark = "jobs_stream"

// JobsStream returns the jobs stream the store last adopted
// (AdoptJobsStream), "" if none.
func (db *DB) JobsStream(ctx context.Context) (string, error) {
	var id string
	err := db.r.QueryRowContext(ctx, `SELECT value FROM queue_marks WHERE name = ?`, jobsStreamMark).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the jobs stream's mark: %w", err)
	}
	return id, nil
}

// AdoptJobsStream records id as the jobs stream that the jobs of runs
// marked published are in. When the store had recorded another stream
// (this one was made anew: a restore onto a new JetStream, the stream
// deleted by hand, a NATS cluster rebuilt), or none while the stream is
// empty (a store from before the mark), the jobs of its QUEUED runs are not
// in it: those marked published count as unpublished again, in the same
// transaction, for the server's republish (Unpublished) to publish. Runs
// that wait for others or for a pool's slot are left as they are: their
// jobs are published at their release. It returns how many runs it
// requeued.
//
// A crash before the commit leaves the old mark, so the next start does
// it again; after it, the runs are unpublished and the next start's
// republish publishes them.
func (db *DB) AdoptJobsStream(ctx context.Context, id string, empty bool) (int, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("adopt jobs stream %s: %w", id, err)
	}
	defer tx.Rollback()
	var old string
	err = tx.QueryRowContext(ctx, `SELECT value FROM queue_marks WHERE name = ?`, jobsStreamMark).Scan(&old)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("adopt jobs stream %s: %w", id, err)
	}
	if old == id {
		return 0, nil
	}
	var n int64
	if old != "" || empty {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET published_attempt = MAX(attempt, 1) - 1
			WHERE status = 'QUEUED' AND published_attempt >= MAX(attempt, 1) AND attempt > 0
			AND NOT EXISTS (SELECT 1 FROM run_waits w WHERE w.run_id = runs.run_id)
			AND NOT EXISTS (SELECT 1 FROM pool_runs p INDEXED BY pool_runs_run WHERE p.run_id = runs.run_id AND p.state = 2)`)
		if err != nil {
			return 0, fmt.Errorf("adopt jobs stream %s: requeue runs: %w", id, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return 0, fmt.Errorf("adopt jobs stream %s: %w", id, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO queue_marks (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, jobsStreamMark, id); err != nil {
		return 0, fmt.Errorf("adopt jobs stream %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("adopt jobs stream %s: %w", id, err)
	}
	return int(n), nil
}
