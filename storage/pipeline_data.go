package storage

import (
	"context"
	"fmt"
	"time"
)

// PipelineRunsWithData returns, oldest end first and at most limit, the
// pipeline runs that ended at or before before and whose stage files were
// not deleted yet.
func (db *DB) PipelineRunsWithData(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT run_id FROM pipeline_runs
		WHERE data_deleted_at = 0 AND finished_at > 0 AND finished_at <= ? ORDER BY finished_at LIMIT ?`,
		before.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("pipeline runs with data: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("pipeline runs with data: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// MarkPipelineRunDataDeleted records that the stage files of the pipeline
// runs are gone, in one transaction.
func (db *DB) MarkPipelineRunDataDeleted(ctx context.Context, ids []string, at time.Time) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mark pipeline run data deleted: %w", err)
	}
	defer tx.Rollback()
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE pipeline_runs SET data_deleted_at = ? WHERE run_id = ?`,
			at.UnixNano(), id); err != nil {
			return fmt.Errorf("mark pipeline run %s data deleted: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mark pipeline run data deleted: %w", err)
	}
	return nil
}

// HasPipelineRunKey reports whether a pipeline run holds the idempotency
// key, on the reader: a cheap check before a create that would find it.
func (db *DB) HasPipelineRunKey(ctx context.Context, key string) (bool, error) {
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM pipeline_runs WHERE idempotency_key = ?`, key).Scan(&n); err != nil {
		return false, fmt.Errorf("pipeline run key %s: %w", key, err)
	}
	return n > 0, nil
}
