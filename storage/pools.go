package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// Pools (migration 0012, jobs/pool.go). The pool_runs table indexes the
// runs of pools that have not ended by pool and state: its rows are copies
// of what each run's document says (jobs.Run.PoolState), written in the
// same transaction as the document by CreateRun, UpdateRun, RequeueRun
// and ApplyEvents. Runs without a pool cost none of these statements.
// ReleasePool counts the slots in use and releases waiting runs in one
// transaction: the server is the single writer, so no two releases can
// both see the same free slot, before or after a crash. A run that ended
// keeping its slot (jobs.PoolKept, state 4, migration 0014) keeps its row
// and counts as in use until FreeSlot's write, or an event's, frees it.

// poolRank orders a pool's waiting runs: high first, then normal, then low.
func poolRank(p jobs.Priority) int {
	switch p.Level() {
	case jobs.PriorityHigh:
		return 0
	case jobs.PriorityLow:
		return 2
	}
	return 1
}

// syncPool replaces the pool_runs row of r, a run written, by what its
// document says now; fresh says r is new and has no row yet.
func syncPool(ctx context.Context, tx *sql.Tx, r *jobs.Run, fresh bool) error {
	if r.Pool == "" {
		return nil
	}
	if !fresh {
		if _, err := tx.ExecContext(ctx, `DELETE FROM pool_runs WHERE run_id = ?`, r.RunID); err != nil {
			return fmt.Errorf("forget run %s in pool %s: %w", r.RunID, r.Pool, err)
		}
	}
	st := r.PoolState()
	if st == jobs.PoolNone {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO pool_runs (pool, state, rank, run_id) VALUES (?, ?, ?, ?)`,
		r.Pool, int(st), poolRank(r.Priority), r.RunID); err != nil {
		return fmt.Errorf("record run %s in pool %s: %w", r.RunID, r.Pool, err)
	}
	return nil
}

// poolCounts reads a pool's slots in use and runs waiting.
const poolCounts = `SELECT
	(SELECT COUNT(*) FROM pool_runs WHERE pool = ?1 AND state >= 3),
	(SELECT COUNT(*) FROM pool_runs WHERE pool = ?1 AND state = 2)`

// SetPool creates pool name with slots, or changes its slots. It reports
// whether it created it, and returns the pool as its transaction left it:
// read after, a delete in between would make a set that took answer that
// the pool is not found.
func (db *DB) SetPool(ctx context.Context, name string, slots int, now time.Time) (*jobs.Pool, bool, error) {
	var (
		created bool
		p       *jobs.Pool
	)
	err := db.inGroup(ctx, func(tx *sql.Tx) error {
		ctx := uninterrupted(ctx)
		var old int
		err := tx.QueryRowContext(ctx, `SELECT slots FROM pools WHERE name = ?`, name).Scan(&old)
		created = errors.Is(err, sql.ErrNoRows)
		if err != nil && !created {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO pools (name, slots, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
			ON CONFLICT (name) DO UPDATE SET slots = ?2, updated_at = ?3`, name, slots, unixNano(now))
		if err != nil {
			return err
		}
		p, err = readPool(ctx, tx, name)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("set pool %s: %w", name, err)
	}
	return p, created, nil
}

// querier is what readPool reads through: the store's reader or a
// transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readPool reads pool name with its counts; sql.ErrNoRows when missing.
func readPool(ctx context.Context, q querier, name string) (*jobs.Pool, error) {
	p := jobs.Pool{Name: name}
	var created, updated int64
	if err := q.QueryRowContext(ctx, `SELECT slots, created_at, updated_at FROM pools WHERE name = ?`, name).Scan(&p.Slots, &created, &updated); err != nil {
		return nil, err
	}
	if err := q.QueryRowContext(ctx, poolCounts, name).Scan(&p.InUse, &p.Waiting); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &p, nil
}

// GetPool returns pool name with its counts, or an error wrapping
// jobs.ErrNotFound.
func (db *DB) GetPool(ctx context.Context, name string) (*jobs.Pool, error) {
	p, err := readPool(ctx, db.r, name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("pool %s: %w", name, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get pool %s: %w", name, err)
	}
	return p, nil
}

// ListPools returns every pool with its counts, by name: a seek per pool
// and count, however many runs are recorded.
func (db *DB) ListPools(ctx context.Context) ([]jobs.Pool, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT name, slots, created_at, updated_at,
		(SELECT COUNT(*) FROM pool_runs r WHERE r.pool = p.name AND r.state >= 3),
		(SELECT COUNT(*) FROM pool_runs r WHERE r.pool = p.name AND r.state = 2)
		FROM pools p ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	defer rows.Close()
	out := []jobs.Pool{}
	for rows.Next() {
		var (
			p                jobs.Pool
			created, updated int64
		)
		if err := rows.Scan(&p.Name, &p.Slots, &created, &updated, &p.InUse, &p.Waiting); err != nil {
			return nil, fmt.Errorf("list pools: %w", err)
		}
		p.CreatedAt, p.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	return out, nil
}

// PoolRun is a run of a pool that has not ended.
type PoolRun struct {
	RunID string
	State jobs.PoolState
}

// DeletePool deletes pool name, after check approved the runs of the pool
// that have not ended (those holding a slot first, then those waiting),
// and fails the runs that waited (jobs.Run.FailForPool, at now), all in
// one transaction; it returns the runs it saw, those it failed, and the
// ids of the announcement outbox's rows written for those (announce.go),
// in the same order. Were
// the waiting runs failed later, by a release, a pool of the same name
// set in between would give them its slots. Those holding a slot keep
// their rows: they run on, and a pool of the same name counts them in
// use until they end. A missing pool is an error wrapping
// jobs.ErrNotFound.
func (db *DB) DeletePool(ctx context.Context, name string, now time.Time, check func([]PoolRun) error) ([]PoolRun, []*jobs.Run, []int64, error) {
	var (
		runs     []PoolRun
		failed   []*jobs.Run
		outbox   []int64
		outboxed bool
	)
	err := db.inGroup(ctx, func(tx *sql.Tx) error {
		ctx := uninterrupted(ctx)
		runs, failed, outbox, outboxed = nil, nil, nil, false
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM pools WHERE name = ?`, name).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("pool %s: %w", name, jobs.ErrNotFound)
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT run_id, state FROM pool_runs WHERE pool = ? ORDER BY state DESC, rank, run_id`, name)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r PoolRun
			if err := rows.Scan(&r.RunID, &r.State); err != nil {
				return err
			}
			runs = append(runs, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if check != nil {
			if err := check(runs); err != nil {
				return err
			}
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM pools WHERE name = ?`, name); err != nil {
			return err
		}
		for _, pr := range runs {
			if pr.State != jobs.PoolWaiting && pr.State != jobs.PoolBlocked {
				continue
			}
			r, err := db.poolRunTx(ctx, tx, pr.RunID)
			if err != nil {
				return err
			}
			before := r.Status
			if !r.FailForPool(now) {
				return fmt.Errorf("run %s: its row says it waits for the pool, its document does not", pr.RunID)
			}
			hooked, err := db.rewriteRunTx(ctx, tx, r, before)
			if err != nil {
				return fmt.Errorf("fail run %s: %w", pr.RunID, err)
			}
			outboxed = outboxed || hooked
			row, err := insertAnnouncement(ctx, tx, pr.RunID)
			if err != nil {
				return fmt.Errorf("fail run %s: %w", pr.RunID, err)
			}
			failed = append(failed, r)
			outbox = append(outbox, row)
		}
		return nil
	})
	if err != nil {
		if jobs.ErrorCode(err) != jobs.CodeInternal {
			return nil, nil, nil, err
		}
		return nil, nil, nil, fmt.Errorf("delete pool %s: %w", name, err)
	}
	if outboxed {
		db.notifyOutbox()
	}
	return runs, failed, outbox, nil
}

// KeptSlots returns the runs that ended keeping their pool's slot
// (jobs.PoolKept), by id: a seek in an index of only them.
func (db *DB) KeptSlots(ctx context.Context) ([]jobs.Run, error) {
	runs, err := db.queryRuns(ctx, `SELECT doc FROM runs WHERE run_id IN
		(SELECT run_id FROM pool_runs INDEXED BY pool_runs_kept WHERE state = 4) ORDER BY run_id`)
	if err != nil {
		return nil, fmt.Errorf("list runs keeping a pool slot: %w", err)
	}
	return runs, nil
}

// PoolsInUse returns the names of the pools that runs not ended name,
// existing or not, in name order: the pools a release may be due in.
func (db *DB) PoolsInUse(ctx context.Context) ([]string, error) {
	ids, err := db.queryIDs(ctx, `SELECT DISTINCT pool FROM pool_runs ORDER BY pool`)
	if err != nil {
		return nil, fmt.Errorf("list pools in use: %w", err)
	}
	return ids, nil
}

// PoolRelease is what ReleasePool did.
type PoolRelease struct {
	// Released are the runs that took a slot, in the order they did: their
	// jobs are to be published.
	Released []*jobs.Run
	// Outbox are the ids of the announcement outbox's rows written for
	// Released, in the same order (announce.go): their release is to be
	// announced even across a crash.
	Outbox []int64
	// Told are the waiting runs whose statusReason changed.
	Told []*jobs.Run
	// Orphans are, when the pool no longer exists, the runs that wait for
	// it (for a slot, or for their dependsOn first): they can never run.
	Orphans []string
}

// ReleasePool gives the free slots of pool name to its waiting runs,
// highest priority first, then oldest first, as many as are free and no
// more, and brings the statusReason of the runs left waiting up to date;
// all in one transaction, the slots in use counted in it. The reasons are
// compared in SQL, without decoding the documents: only the runs whose
// reason changes (the slots or the count in use changed) are written.
// place, when not nil, gives a released run its statusReason (why no
// worker could take it, or empty), in the same write as its slot.
func (db *DB) ReleasePool(ctx context.Context, name string, now time.Time, place func(*jobs.Run) string) (PoolRelease, error) {
	var out PoolRelease
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return out, fmt.Errorf("release pool %s: %w", name, err)
	}
	defer tx.Rollback()
	var slots int
	err = tx.QueryRowContext(ctx, `SELECT slots FROM pools WHERE name = ?`, name).Scan(&slots)
	if errors.Is(err, sql.ErrNoRows) {
		out.Orphans, err = queryStrings(ctx, tx, `SELECT run_id FROM pool_runs WHERE pool = ? AND state IN (1, 2) ORDER BY run_id`, name)
		if err != nil {
			return out, fmt.Errorf("release pool %s: %w", name, err)
		}
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("release pool %s: %w", name, err)
	}
	var inUse, waiting int
	if err := tx.QueryRowContext(ctx, poolCounts, name).Scan(&inUse, &waiting); err != nil {
		return out, fmt.Errorf("release pool %s: %w", name, err)
	}
	upd := tx.StmtContext(ctx, db.stmts.updateRun)
	if free := min(slots-inUse, waiting); free > 0 {
		ids, err := queryStrings(ctx, tx, `SELECT run_id FROM pool_runs WHERE pool = ? AND state = 2 ORDER BY rank, run_id LIMIT ?`, name, free)
		if err != nil {
			return out, fmt.Errorf("release pool %s: %w", name, err)
		}
		for _, id := range ids {
			r, err := db.poolRunTx(ctx, tx, id)
			if err != nil {
				return out, fmt.Errorf("release pool %s: %w", name, err)
			}
			if !r.TakeSlot(now) {
				return out, fmt.Errorf("release pool %s: run %s: its row says it waits for a slot, its document does not", name, id)
			}
			if place != nil {
				r.StatusReason = place(r)
			}
			if err := writeRun(ctx, upd, r); err != nil {
				return out, fmt.Errorf("release pool %s: store run %s: %w", name, id, err)
			}
			if err := syncPool(ctx, tx, r, false); err != nil {
				return out, fmt.Errorf("release pool %s: %w", name, err)
			}
			outbox, err := insertAnnouncement(ctx, tx, id)
			if err != nil {
				return out, fmt.Errorf("release pool %s: run %s: %w", name, id, err)
			}
			out.Released = append(out.Released, r)
			out.Outbox = append(out.Outbox, outbox)
		}
		inUse += len(ids)
	}
	reason := jobs.PoolWaitReason(name, slots, inUse)
	ids, err := queryStrings(ctx, tx, `SELECT w.run_id FROM pool_runs w JOIN runs r ON r.run_id = w.run_id
		WHERE w.pool = ? AND w.state = 2 AND COALESCE(json_extract(CAST(r.doc AS TEXT), '$.statusReason'), '') != ?
		ORDER BY w.rank, w.run_id`, name, reason)
	if err != nil {
		return out, fmt.Errorf("release pool %s: %w", name, err)
	}
	for _, id := range ids {
		r, err := db.poolRunTx(ctx, tx, id)
		if err != nil {
			return out, fmt.Errorf("release pool %s: %w", name, err)
		}
		r.StatusReason = reason
		if err := writeRun(ctx, upd, r); err != nil {
			return out, fmt.Errorf("release pool %s: store run %s: %w", name, id, err)
		}
		out.Told = append(out.Told, r)
	}
	if err := tx.Commit(); err != nil {
		return out, fmt.Errorf("release pool %s: %w", name, err)
	}
	return out, nil
}

// poolRunTx reads run id in tx.
func (db *DB) poolRunTx(ctx context.Context, tx *sql.Tx, id string) (*jobs.Run, error) {
	var doc []byte
	if err := tx.StmtContext(ctx, db.stmts.selectRunDoc).QueryRowContext(ctx, id).Scan(&doc); err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	r, err := decodeRun(doc)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	return r, nil
}
