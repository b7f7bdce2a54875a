package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/jobs"
)

// The run_waits table (migration 0009) indexes the runs that wait for
// others (jobs.Run.Waiting) by the run they wait for: when a run moves,
// the server finds who waits for it without reading every queued run. Its
// rows are copies of what a run's document says, written in the same
// transaction as the document by CreateRun, UpdateRun and RequeueRun: a
// crash leaves both or neither. ApplyEvents writes none: worker events
// come only for runs whose job was published, which wait for nothing.

// insertWaits records the dependencies r waits for; r is new.
func insertWaits(ctx context.Context, tx *sql.Tx, r *jobs.Run) error {
	for _, id := range r.WaitsFor() {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO run_waits (depends_on, run_id) VALUES (?, ?)`, id, r.RunID); err != nil {
			return fmt.Errorf("record that run %s waits for %s: %w", r.RunID, id, err)
		}
	}
	return nil
}

// syncWaits replaces the rows of r, a run written again, by what its
// document says now. Runs without dependencies, all but a few, cost
// nothing.
func syncWaits(ctx context.Context, tx *sql.Tx, r *jobs.Run) error {
	if len(r.DependsOn) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM run_waits WHERE run_id = ?`, r.RunID); err != nil {
		return fmt.Errorf("forget what run %s waits for: %w", r.RunID, err)
	}
	return insertWaits(ctx, tx, r)
}

// waitedFor reports whether a run waits for id: the prune keeps id until
// the server resolved every run that waits for it, which it does when id
// ends, before any retention could be due; this covers a resolution that
// failed or has yet to be retried.
func waitedFor(ctx context.Context, tx *sql.Tx, id string) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM run_waits WHERE depends_on = ? LIMIT 1`, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("runs waiting for %s: %w", id, err)
	}
	return true, nil
}

// WaitingFor returns the ids of the runs that wait for any of ids, each
// once, in id order.
func (db *DB) WaitingFor(ctx context.Context, ids ...string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	const chunk = 500 // SQLite bounds a statement's parameters
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		ids = ids[n:]
		got, err := db.queryIDs(ctx, `SELECT DISTINCT run_id FROM run_waits WHERE depends_on IN (?`+
			strings.Repeat(`, ?`, n-1)+`) ORDER BY run_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("list runs waiting for others: %w", err)
		}
		for _, id := range got {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// WaitingRuns returns the ids of every run that waits for another, in id
// order.
func (db *DB) WaitingRuns(ctx context.Context) ([]string, error) {
	ids, err := db.queryIDs(ctx, `SELECT DISTINCT run_id FROM run_waits INDEXED BY run_waits_run ORDER BY run_id`)
	if err != nil {
		return nil, fmt.Errorf("list waiting runs: %w", err)
	}
	return ids, nil
}

// WaitingOnEnded returns the ids of the runs that wait for a run that has
// ended or is gone, in id order: those whose resolution is due (the
// server's sweep catches what a failed or raced one missed). It reads
// run_waits, whose rows are few, and each dependency by its key.
func (db *DB) WaitingOnEnded(ctx context.Context) ([]string, error) {
	ids, err := db.queryIDs(ctx, `SELECT DISTINCT w.run_id FROM run_waits w LEFT JOIN runs r ON r.run_id = w.depends_on
		WHERE r.run_id IS NULL OR r.status IN ('SUCCEEDED', 'FAILED', 'CANCELED') ORDER BY w.run_id`)
	if err != nil {
		return nil, fmt.Errorf("list runs waiting for ended runs: %w", err)
	}
	return ids, nil
}

// RunStatuses returns the status of each of ids that is stored.
func (db *DB) RunStatuses(ctx context.Context, ids ...string) (map[string]jobs.Status, error) {
	out := make(map[string]jobs.Status, len(ids))
	for _, id := range ids {
		var st string
		err := db.r.QueryRowContext(ctx, `SELECT status FROM runs WHERE run_id = ?`, id).Scan(&st)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return nil, fmt.Errorf("status of run %s: %w", id, err)
		}
		out[id] = jobs.Status(st)
	}
	return out, nil
}

func (db *DB) queryIDs(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
