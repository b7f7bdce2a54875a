package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// QueueWait is when the oldest queued run of a cluster and priority went
// to the queue.
type QueueWait struct {
	Cluster  string
	Priority jobs.Priority
	// Since is when the run's current attempt was queued: the end of a
	// retry's backoff (which may be to come), else the attempt's creation.
	Since time.Time
}

// queuedSince is the queued_at column of r: when its current attempt went
// to the queue, or will after a retry's backoff; a run released by its
// dependencies went at its release.
func queuedSince(r *jobs.Run) int64 {
	a := r.Current()
	switch {
	case a == nil:
		return unixNano(r.CreatedAt)
	case a.NotBefore != nil:
		return unixNano(*a.NotBefore)
	case a.QueuedAt != nil:
		return unixNano(*a.QueuedAt)
	case !a.CreatedAt.IsZero():
		return unixNano(a.CreatedAt)
	}
	return unixNano(r.CreatedAt)
}

// oldestQueued finds the clusters that have queued runs by skipping
// through runs_queue_wait (a seek each), then the oldest queued_at of each
// cluster and priority (a seek each: the first of the index's last column
// under equal leading ones). Runs that wait for others (run_waits,
// waits.go) are QUEUED but not in the work queue, which no worker could
// take them from: they are stepped over, a lookup each, and they are few;
// so are runs that wait for a slot in their pool (pool_runs, pools.go),
// and array runs' parents (attempt 0), which have no job (arrays.go).
// The status term is a literal, as the partial index's own (see
// sweep.go).
const oldestQueued = `WITH RECURSIVE c(cluster) AS (
		SELECT MIN(cluster) FROM runs INDEXED BY runs_queue_wait WHERE status = 'QUEUED'
		UNION ALL
		SELECT (SELECT MIN(cluster) FROM runs INDEXED BY runs_queue_wait WHERE status = 'QUEUED' AND cluster > c.cluster)
			FROM c WHERE c.cluster IS NOT NULL
	)
	SELECT c.cluster, p.priority,
		(SELECT q.queued_at FROM runs q INDEXED BY runs_queue_wait
			WHERE q.status = 'QUEUED' AND q.cluster = c.cluster AND q.priority = p.priority
			AND q.attempt > 0
			AND NOT EXISTS (SELECT 1 FROM run_waits w WHERE w.run_id = q.run_id)
			AND NOT EXISTS (SELECT 1 FROM pool_runs w INDEXED BY pool_runs_run WHERE w.run_id = q.run_id AND w.state = 2)
			ORDER BY q.queued_at LIMIT 1)
	FROM c, (SELECT 'high' AS priority, 0 AS rank UNION ALL SELECT 'normal', 1 UNION ALL SELECT 'low', 2) p
	WHERE c.cluster IS NOT NULL
	ORDER BY c.cluster, p.rank`

// OldestQueued returns, for every cluster and priority that has QUEUED
// runs (not yet taken by a worker), when the oldest of them was queued,
// in cluster order and, within a cluster, high, normal, low; those
// without queued runs are left out. Its cost follows the number of
// clusters with queued runs, not that of the runs: a few index seeks
// each.
func (db *DB) OldestQueued(ctx context.Context) ([]QueueWait, error) {
	rows, err := db.r.QueryContext(ctx, oldestQueued)
	if err != nil {
		return nil, fmt.Errorf("oldest queued runs: %w", err)
	}
	defer rows.Close()
	var out []QueueWait
	for rows.Next() {
		var (
			w     QueueWait
			since *int64
		)
		if err := rows.Scan(&w.Cluster, &w.Priority, &since); err != nil {
			return nil, fmt.Errorf("oldest queued runs: %w", err)
		}
		if since != nil {
			w.Since = time.Unix(0, *since).UTC()
			out = append(out, w)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("oldest queued runs: %w", err)
	}
	return out, nil
}
