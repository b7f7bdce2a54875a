package storage

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry/jobs"
)

// DeletePipeline deletes every version of a pipeline and the state of its
// schedule, in one transaction, so that the cron never sees one without
// the other. The pipeline's runs stay: their rows hold the spec they ran
// and stay readable by id.
//
// check is called inside the transaction with the ids of the pipeline's
// runs that have not ended, newest first; if it returns an error, nothing
// is deleted and that error is returned. An unknown name returns an error
// wrapping jobs.ErrNotFound.
func (db *DB) DeletePipeline(ctx context.Context, name string, check func(active []string) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete pipeline %s: %w", name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pipelines WHERE name = ?`, name).Scan(&n); err != nil {
		return fmt.Errorf("delete pipeline %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("pipeline %s: %w", name, jobs.ErrNotFound)
	}
	rows, err := tx.QueryContext(ctx, `SELECT run_id FROM pipeline_runs
		WHERE pipeline = ? AND status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELED') ORDER BY run_id DESC`, name)
	if err != nil {
		return fmt.Errorf("delete pipeline %s: %w", name, err)
	}
	var active []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("delete pipeline %s: %w", name, err)
		}
		active = append(active, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("delete pipeline %s: %w", name, err)
	}
	if check != nil {
		if err := check(active); err != nil {
			return err
		}
	}
	for _, q := range []string{`DELETE FROM pipelines WHERE name = ?`, `DELETE FROM schedules WHERE name = ?`} {
		if _, err := tx.ExecContext(ctx, q, name); err != nil {
			return fmt.Errorf("delete pipeline %s: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete pipeline %s: %w", name, err)
	}
	return nil
}
