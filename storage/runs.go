package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	json "github.com/goccy/go-json"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Statements of the hot paths, prepared once (stmts.go). Every write of a
// run sets the columns copied from its document together with the document.
const (
	selectRunDoc   = `SELECT doc FROM runs WHERE run_id = ?`
	selectRunByKey = `SELECT doc FROM runs WHERE idempotency_key = ?`
	insertRun      = `INSERT INTO runs
		(run_id, status, cluster, task_definition, created_at, idempotency_key, attempt, worker, deadline, priority, queued_at, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	updateRun = `UPDATE runs SET status = ?, cluster = ?, task_definition = ?, attempt = ?, worker = ?, deadline = ?,
		priority = ?, queued_at = ?, doc = ? WHERE run_id = ?`
	insertRunTag  = `INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)`
	deleteRun     = `DELETE FROM runs WHERE run_id = ?`
	markPublished = `UPDATE runs SET published_attempt = MAX(published_attempt, ?) WHERE run_id = ?`
)

// CreateRun inserts r. If r.IdempotencyKey is set and a run already has it,
// nothing is inserted and that run is returned with created=false. A run id
// that is already taken is an error with code already_exists.
func (db *DB) CreateRun(ctx context.Context, r *jobs.Run) (run *jobs.Run, created bool, err error) {
	run, created, _, err = db.CreateRunAnnounced(ctx, r, false)
	return run, created, err
}

// CreateRunAnnounced is CreateRun that, with announce set and the run
// created, also writes a row of the announcement outbox (announce.go) in
// the run's transaction, and returns its id (0 when none was written): a
// new run whose QUEUED the published mark does not vouch for (one that
// waits, or fails at once).
func (db *DB) CreateRunAnnounced(ctx context.Context, r *jobs.Run, announce bool) (run *jobs.Run, created bool, outbox int64, err error) {
	if r.RunID == "" {
		return nil, false, 0, jobs.Invalid("create run: empty run id")
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return nil, false, 0, fmt.Errorf("create run %s: %w", r.RunID, err)
	}
	var (
		old      *jobs.Run
		outboxed bool
	)
	err = db.inGroup(ctx, func(tx *sql.Tx) error {
		ctx := uninterrupted(ctx)
		old, outboxed, outbox = nil, false, 0 // the committer may run this twice
		// One writer: checking then inserting inside the transaction cannot race.
		if r.IdempotencyKey != "" {
			var existing []byte
			err := tx.StmtContext(ctx, db.stmts.selectRunByKey).QueryRowContext(ctx, r.IdempotencyKey).Scan(&existing)
			switch {
			case err == nil:
				old, err = decodeRun(existing)
				if err != nil {
					return fmt.Errorf("idempotency key %q: %w", r.IdempotencyKey, err)
				}
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		var err error
		outboxed, outbox, err = db.insertRunTx(ctx, tx, r, doc, announce)
		return err
	})
	if err == nil && outboxed {
		db.notifyOutbox()
	}
	switch {
	case err != nil:
		return nil, false, 0, fmt.Errorf("create run %s: %w", r.RunID, err)
	case old != nil:
		return old, false, 0, nil
	}
	return r, true, outbox, nil
}

// insertRunTx inserts r, whose document is doc, in tx: its row, tags,
// pool, waits and, for a run that ends at once, its webhook deliveries
// (outboxed reports whether there are some, for the caller to tell the
// outbox after the commit); with announce set, a row of the announcement
// outbox, whose id it returns.
func (db *DB) insertRunTx(ctx context.Context, tx *sql.Tx, r *jobs.Run, doc []byte, announce bool) (outboxed bool, outbox int64, err error) {
	worker, deadline := sweepColumns(r)
	// A taken run id is found by the primary key, not by a query first.
	_, err = tx.StmtContext(ctx, db.stmts.insertRun).ExecContext(ctx,
		r.RunID, string(r.Status), r.Cluster, r.TaskDefinition, r.CreatedAt.UnixNano(),
		nullIfEmpty(r.IdempotencyKey), len(r.Attempts), worker, deadline, string(r.Priority.Level()), queuedSince(r), doc)
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return false, 0, &jobs.Error{Code: jobs.CodeAlreadyExists, Message: "run " + r.RunID + " already exists"}
	}
	if err != nil {
		return false, 0, err
	}
	if len(r.Tags) > 0 { // a run without tags costs no statement more
		ins := tx.StmtContext(ctx, db.stmts.insertRunTag)
		for k, v := range r.Tags {
			if _, err := ins.ExecContext(ctx, r.RunID, k, v); err != nil {
				return false, 0, fmt.Errorf("tag %s: %w", k, err)
			}
		}
	}
	if err := syncPool(ctx, tx, r, true); err != nil { // pools.go
		return false, 0, err
	}
	if r.Status.Terminal() { // a run that fails before it is queued: webhooks.go
		if outboxed, err = outboxRun(ctx, tx, db.hooksNow(), r, ""); err != nil {
			return false, 0, err
		}
	}
	if announce {
		if outbox, err = insertAnnouncement(ctx, tx, r.RunID); err != nil { // announce.go
			return false, 0, err
		}
	}
	return outboxed, outbox, insertWaits(ctx, tx, r) // waits.go
}

// RunByKey returns the run that holds the idempotency key, or an error
// wrapping jobs.ErrNotFound.
func (db *DB) RunByKey(ctx context.Context, key string) (*jobs.Run, error) {
	var doc []byte
	err := db.stmts.selectRunByKey.QueryRowContext(ctx, key).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("idempotency key %q: %w", key, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("idempotency key %q: %w", key, err)
	}
	return decodeRun(doc)
}

// RunKeyTaken reports whether a run holds the idempotency key.
func (db *DB) RunKeyTaken(ctx context.Context, key string) (bool, error) {
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE idempotency_key = ?`, key).Scan(&n); err != nil {
		return false, fmt.Errorf("idempotency key %q: %w", key, err)
	}
	return n > 0, nil
}

// GetRun returns the run with id, or an error wrapping jobs.ErrNotFound.
func (db *DB) GetRun(ctx context.Context, id string) (*jobs.Run, error) {
	var doc []byte
	err := db.stmts.getRun.QueryRowContext(ctx, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %s: %w", id, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	r, err := decodeRun(doc)
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	return r, nil
}

// RunFilter selects runs for ListRuns. Zero fields select everything.
type RunFilter struct {
	// Statuses keeps runs in any of these statuses.
	Statuses []jobs.Status
	// Limit caps the number of runs returned; zero or less means no cap.
	Limit int
	// Before is a run id cursor: only runs with id < Before are returned.
	// Pass the last id of a page to get the next one.
	Before string
	// Tags keeps runs that have every one of these tags, key and value.
	Tags map[string]string
	// TagKeys keeps runs that have a tag of each of these keys, whatever
	// its value.
	TagKeys []string
	// ArrayJobID keeps the children of that array run, and lists them by
	// index (PARENT-0, PARENT-1, ..., PARENT-10, ...), not newest first:
	// a page is a range of runs_array_children (migration 0023), whatever
	// the array's size. FromIndex is that order's cursor: only children
	// of that index or above are returned (the index after the last of
	// the previous page: Next). HideArrayChildren leaves every array's
	// children out, as AWS Batch's list-jobs does without --array-job-id.
	ArrayJobID        string
	FromIndex         int
	HideArrayChildren bool
}

// Next moves f's cursor past r, the last run of a page ListRuns returned
// for f: Before for a listing newest first, FromIndex for an array's
// children.
func (f *RunFilter) Next(r *jobs.Run) {
	if f.ArrayJobID == "" {
		f.Before = r.RunID
		return
	}
	i, ok := jobs.ArrayChildIndex(f.ArrayJobID, r.RunID)
	if !ok {
		i = math.MaxInt - 1 // no child of it, which none listed is: the end
	}
	f.FromIndex = i + 1
}

// The expressions of runs_array_children (migration 0023) as it writes
// them, for r, the runs: SQLite reads an index on expressions only for a
// query that has the same ones, and a partial index only for a query
// whose WHERE has its WHERE.
const (
	arrayChildCond  = `instr(r.run_id, '-') > 0`
	arrayParentExpr = `substr(r.run_id, 1, instr(r.run_id, '-') - 1)`
	arrayIndexExpr  = `CAST(substr(r.run_id, instr(r.run_id, '-') + 1) AS INTEGER)`
)

// tagCond is one tag a listing asks for; any: of the key, any value.
type tagCond struct {
	key, value string
	any        bool
}

// tagConds are f's tag conditions, those with a value first (they select
// fewer runs), each kind in key order, one per key: a key given with a
// value and alone, or alone twice, is one condition (the value's), as a
// run has one tag of a key.
func (f RunFilter) tagConds() []tagCond {
	var out []tagCond
	for _, k := range slices.Sorted(maps.Keys(f.Tags)) {
		out = append(out, tagCond{key: k, value: f.Tags[k]})
	}
	for _, k := range slices.Compact(slices.Sorted(slices.Values(f.TagKeys))) {
		if _, ok := f.Tags[k]; !ok {
			out = append(out, tagCond{key: k, any: true})
		}
	}
	return out
}

// activeOnly reports whether statuses select only runs that have not
// ended: few, found from the status index.
func activeOnly(statuses []jobs.Status) bool {
	for _, s := range statuses {
		if s.Terminal() {
			return false
		}
	}
	return len(statuses) > 0
}

// ListRuns returns the runs f selects, newest first (by run id, which sorts
// by creation time), or an array's children by index (f.ArrayJobID).
func (db *DB) ListRuns(ctx context.Context, f RunFilter) ([]jobs.Run, error) {
	q, args := f.query()
	runs, err := db.queryRuns(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

// query is ListRuns's SQL and arguments.
func (f RunFilter) query() (string, []any) {
	var (
		q    strings.Builder
		args []any
	)
	tags, id := f.tagConds(), "r.run_id"
	if len(tags) > 0 && !activeOnly(f.Statuses) && f.ArrayJobID == "" {
		// The runs of a tag are read from run_tags_key_value newest first
		// (CROSS JOIN keeps that order of the loops) and the walk stops at
		// the page's end: a page of ps --all --tag team=data costs the
		// same over a thousand runs or a million. A key alone is read
		// from the same index and sorted: its cost follows the number of
		// runs with the key. Runs not ended are few, and found from the
		// status index instead.
		t := tags[0]
		tags = tags[1:]
		q.WriteString(`SELECT r.doc FROM run_tags t CROSS JOIN runs r ON r.run_id = t.run_id WHERE t.key = ?`)
		args = append(args, t.key)
		if !t.any {
			q.WriteString(` AND t.value = ?`)
			args = append(args, t.value)
		}
		id = "t.run_id"
	} else {
		q.WriteString(`SELECT r.doc FROM runs r WHERE 1 = 1`)
	}
	if len(f.Statuses) > 0 {
		q.WriteString(` AND r.status IN (?` + strings.Repeat(`, ?`, len(f.Statuses)-1) + `)`)
		for _, s := range f.Statuses {
			args = append(args, string(s))
		}
	}
	if len(tags) > 0 {
		// No wanted tag the run lacks: the tags wanted are the rows of a
		// VALUES table (column1 the key, column2 the value, NULL for any),
		// each looked up in turn by run_tags' primary key (run_id, key),
		// the walk stopping at the first the run lacks. An EXISTS for
		// each tag, which SQLite makes a join of as many tables, took
		// 38 ms to plan with 50 tags (2 s under the race detector) and
		// grew faster than the number of tags; this query's plan is the
		// same for any number.
		q.WriteString(` AND NOT EXISTS (SELECT 1 FROM (VALUES (?, ?)` + strings.Repeat(`, (?, ?)`, len(tags)-1) + `) w` +
			` WHERE NOT EXISTS (SELECT 1 FROM run_tags x WHERE x.run_id = r.run_id AND x.key = w.column1 AND (w.column2 IS NULL OR x.value = w.column2)))`)
		for _, t := range tags {
			var v any = t.value
			if t.any {
				v = nil
			}
			args = append(args, t.key, v)
		}
	}
	if f.ArrayJobID != "" {
		// In runs_array_children's order: with a status or a tag too,
		// the walk reads and skips the other children's rows (3 FAILED
		// of 10,000: 4 ms, BenchmarkListArrayChildrenPage), where a
		// page from the status index would sort them all.
		q.WriteString(` AND ` + arrayChildCond + ` AND ` + arrayParentExpr + ` = ? AND ` + arrayIndexExpr + ` >= ?`)
		args = append(args, f.ArrayJobID, f.FromIndex)
	} else if f.HideArrayChildren {
		// A child's id is its parent's, a separator and its index; no
		// other run's id has the separator.
		q.WriteString(` AND instr(` + id + `, '` + jobs.ArraySeparator + `') = 0`)
	}
	if f.Before != "" {
		q.WriteString(` AND ` + id + ` < ?`)
		args = append(args, f.Before)
	}
	if f.ArrayJobID != "" {
		q.WriteString(` ORDER BY ` + arrayIndexExpr)
	} else {
		q.WriteString(` ORDER BY ` + id + ` DESC`)
	}
	if f.Limit > 0 {
		q.WriteString(` LIMIT ?`)
		args = append(args, f.Limit)
	}
	return q.String(), args
}

// UpdateRun reads the run, calls fn and writes the run back if fn returns
// true, all in one transaction; returns the run as stored: fn's result if it
// returned true, the unchanged run otherwise. fn must not change the run's id
// or idempotency key. A missing run is an error wrapping jobs.ErrNotFound.
func (db *DB) UpdateRun(ctx context.Context, id string, fn func(*jobs.Run) bool) (*jobs.Run, error) {
	r, _, err := db.UpdateRunAnnounced(ctx, id, func(r *jobs.Run) (bool, bool) { return fn(r), false })
	return r, err
}

// UpdateRunAnnounced is UpdateRun whose fn also says whether the change's
// announcement is to survive a crash: then a row of the announcement
// outbox (announce.go) is written in the same transaction, and its id
// returned (0 when none was written). fn's announce is ignored when it
// does not write the run.
func (db *DB) UpdateRunAnnounced(ctx context.Context, id string, fn func(*jobs.Run) (write, announce bool)) (*jobs.Run, int64, error) {
	runs, outboxes, err := db.UpdateRunsAnnounced(ctx, []string{id}, fn)
	if err != nil {
		return nil, 0, err
	}
	return runs[0], outboxes[0], nil
}

// UpdateRunsAnnounced is UpdateRunAnnounced of every run of ids in one
// transaction, in the order of ids: one commit for a page of an array
// run's children, where one each took most of the time of their stop.
// It returns the runs as stored and their outbox rows, by index of ids.
// One run missing fails them all, as no change is then committed.
func (db *DB) UpdateRunsAnnounced(ctx context.Context, ids []string, fn func(*jobs.Run) (write, announce bool)) ([]*jobs.Run, []int64, error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("update run %s: %w", ids[0], err)
	}
	defer tx.Rollback()
	runs, outboxes := make([]*jobs.Run, len(ids)), make([]int64, len(ids))
	var outboxed bool
	for i, id := range ids {
		r, outbox, o, err := db.updateRunTx(ctx, tx, id, fn)
		if err != nil {
			return nil, nil, err
		}
		runs[i], outboxes[i], outboxed = r, outbox, outboxed || o
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("update run %s: %w", ids[0], err)
	}
	if outboxed {
		db.notifyOutbox()
	}
	return runs, outboxes, nil
}

// updateRunTx is UpdateRunAnnounced of run id within tx; it also reports
// whether webhook deliveries were added (rewriteRunTx).
func (db *DB) updateRunTx(ctx context.Context, tx *sql.Tx, id string, fn func(*jobs.Run) (write, announce bool)) (*jobs.Run, int64, bool, error) {
	var doc []byte
	err := tx.StmtContext(ctx, db.stmts.selectRunDoc).QueryRowContext(ctx, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, false, fmt.Errorf("run %s: %w", id, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("update run %s: %w", id, err)
	}
	r, err := decodeRun(doc)
	if err != nil {
		return nil, 0, false, fmt.Errorf("update run %s: %w", id, err)
	}
	key, before := r.IdempotencyKey, r.Status
	write, announce := fn(r)
	if !write {
		// fn may have touched r before deciding; hand back what is stored.
		r, err := decodeRun(doc)
		return r, 0, false, err
	}
	if r.RunID != id || r.IdempotencyKey != key {
		return nil, 0, false, fmt.Errorf("update run %s: the update changed the run's id or idempotency key", id)
	}
	outboxed, err := db.rewriteRunTx(ctx, tx, r, before)
	if err != nil {
		return nil, 0, false, fmt.Errorf("update run %s: %w", id, err)
	}
	var outbox int64
	if announce {
		if outbox, err = insertAnnouncement(ctx, tx, id); err != nil {
			return nil, 0, false, fmt.Errorf("update run %s: %w", id, err)
		}
	}
	return r, outbox, outboxed, nil
}

// rewriteRunTx writes r, a run stored with status before, in tx: its
// document and columns, its run_waits and pool_runs rows, and its end's
// webhook deliveries. It reports whether it added deliveries: the caller
// tells the outbox after the commit.
func (db *DB) rewriteRunTx(ctx context.Context, tx *sql.Tx, r *jobs.Run, before jobs.Status) (bool, error) {
	if err := writeRun(ctx, tx.StmtContext(ctx, db.stmts.updateRun), r); err != nil {
		return false, err
	}
	if err := syncWaits(ctx, tx, r); err != nil { // waits.go
		return false, err
	}
	if err := syncPool(ctx, tx, r, false); err != nil { // pools.go
		return false, err
	}
	return outboxRun(ctx, tx, db.hooksNow(), r, before) // webhooks.go
}

// MarkPublished records that the job of attempt has been published to the
// queue. Marking an older attempt than the one marked changes nothing.
func (db *DB) MarkPublished(ctx context.Context, id string, attempt int) error {
	var n int64
	err := db.inGroup(ctx, func(tx *sql.Tx) error {
		ctx := uninterrupted(ctx)
		res, err := tx.StmtContext(ctx, db.stmts.markPublished).ExecContext(ctx, attempt, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("mark run %s attempt %d published: %w", id, attempt, err)
	}
	if n == 0 {
		return fmt.Errorf("run %s: %w", id, jobs.ErrNotFound)
	}
	return nil
}

// PublishedSince reports whether the job of the run's attempt has been
// marked published: a listing of Unpublished is a snapshot, and a
// submission may mark its runs while the sweep works through one (an
// array's children, thousands of them). A run gone reports true.
func (db *DB) PublishedSince(ctx context.Context, id string, attempt int) (bool, error) {
	var published int
	err := db.r.QueryRowContext(ctx, `SELECT published_attempt FROM runs WHERE run_id = ?`, id).Scan(&published)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("run %s: %w", id, err)
	}
	return published >= max(attempt, 1), nil
}

// Unpublished returns QUEUED runs whose current attempt has not been marked
// published (for the server to republish after a crash), oldest first. A
// QUEUED run without attempts counts as waiting for attempt 1. Runs that
// wait for others (run_waits, waits.go) or for a slot in their pool
// (pool_runs, pools.go) are left out: their job is published when they
// are released. It reads the runs_unpublished index:
// its cost follows their number, not that of all queued runs (without
// statistics SQLite would pick the status index).
func (db *DB) Unpublished(ctx context.Context) ([]jobs.Run, error) {
	runs, err := db.queryRuns(ctx, `SELECT doc FROM runs INDEXED BY runs_unpublished
		WHERE `+unpublishedWhere+` ORDER BY run_id`)
	if err != nil {
		return nil, fmt.Errorf("list unpublished runs: %w", err)
	}
	return runs, nil
}

// unpublishedWhere is Unpublished's condition, on runs INDEXED BY
// runs_unpublished or runs_unpublished_due.
const unpublishedWhere = `status = 'QUEUED' AND published_attempt < MAX(attempt, 1)
		AND NOT EXISTS (SELECT 1 FROM run_waits w WHERE w.run_id = runs.run_id)
		AND NOT EXISTS (SELECT 1 FROM pool_runs p INDEXED BY pool_runs_run WHERE p.run_id = runs.run_id AND p.state = 2)`

// UnpublishedDue is Unpublished narrowed to the runs due by now: those
// whose current attempt is no retry waiting for its backoff (queued_at,
// the end of the backoff, after now). It also returns when the earliest
// of those that wait is due, zero if none waits. It reads neither the
// documents nor the rows of the runs waiting for their backoff: the
// server calls it when a backoff ends, however many others wait.
func (db *DB) UnpublishedDue(ctx context.Context, now time.Time) ([]jobs.Run, time.Time, error) {
	at := unixNano(now)
	runs, err := db.queryRuns(ctx, unpublishedDueQuery, at)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("list unpublished runs due: %w", err)
	}
	var next int64
	switch err := db.r.QueryRowContext(ctx, nextUnpublishedDueQuery, at).Scan(&next); {
	case errors.Is(err, sql.ErrNoRows):
		return runs, time.Time{}, nil
	case err != nil:
		return nil, time.Time{}, fmt.Errorf("find the next unpublished run due: %w", err)
	}
	return runs, time.Unix(0, next).UTC(), nil
}

// UnpublishedDue's queries: a range of runs_unpublished_due, and a seek
// in it to the first run after now that waits for nothing else
// (run_waits, pool_runs).
const (
	unpublishedDueQuery = `SELECT doc FROM runs INDEXED BY runs_unpublished_due
		WHERE ` + unpublishedWhere + ` AND queued_at <= ? ORDER BY run_id`
	nextUnpublishedDueQuery = `SELECT queued_at FROM runs INDEXED BY runs_unpublished_due
		WHERE ` + unpublishedWhere + ` AND queued_at > ? ORDER BY queued_at LIMIT 1`
)

// CountRuns returns the number of runs per status. Statuses no run is in
// are absent.
func (db *DB) CountRuns(ctx context.Context) (map[jobs.Status]int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT status, COUNT(*) FROM runs GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	defer rows.Close()
	out := map[jobs.Status]int{}
	for rows.Next() {
		var (
			s string
			n int
		)
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("count runs: %w", err)
		}
		out[jobs.Status(s)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	return out, nil
}

// countActiveRuns counts the runs not ended by status, from runs_status.
const countActiveRuns = `SELECT status, COUNT(*) FROM runs INDEXED BY runs_status
	WHERE status IN ('QUEUED', 'STARTING', 'RUNNING') GROUP BY status`

// ActiveRuns is how many runs stand in each status that has not ended.
type ActiveRuns struct {
	Queued, Starting, Running int
}

// CountActiveRuns counts the runs that have not ended, by status. It reads
// the status index over those statuses only: its cost follows the number
// of runs not ended, not that of every run recorded (CountRuns walks them
// all).
func (db *DB) CountActiveRuns(ctx context.Context) (ActiveRuns, error) {
	var n ActiveRuns
	rows, err := db.r.QueryContext(ctx, countActiveRuns)
	if err != nil {
		return n, fmt.Errorf("count active runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			s string
			c int
		)
		if err := rows.Scan(&s, &c); err != nil {
			return n, fmt.Errorf("count active runs: %w", err)
		}
		switch jobs.Status(s) {
		case jobs.StatusQueued:
			n.Queued = c
		case jobs.StatusStarting:
			n.Starting = c
		case jobs.StatusRunning:
			n.Running = c
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("count active runs: %w", err)
	}
	return n, nil
}

func (db *DB) queryRuns(ctx context.Context, query string, args ...any) ([]jobs.Run, error) {
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []jobs.Run
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var r jobs.Run
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, fmt.Errorf("decode run: %w", err)
		}
		r.Priority = r.Priority.Level()
		out = append(out, r)
	}
	return out, rows.Err()
}

// writeRun stores r's document and the columns copied from it.
func writeRun(ctx context.Context, upd *sql.Stmt, r *jobs.Run) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return execUpdateRun(ctx, upd, r, doc)
}

// execUpdateRun runs updateRun with r's columns and its document doc.
func execUpdateRun(ctx context.Context, upd *sql.Stmt, r *jobs.Run, doc []byte) error {
	worker, deadline := sweepColumns(r)
	_, err := upd.ExecContext(ctx, string(r.Status), r.Cluster, r.TaskDefinition, len(r.Attempts), worker, deadline,
		string(r.Priority.Level()), queuedSince(r), doc, r.RunID)
	return err
}

func decodeRun(doc []byte) (*jobs.Run, error) {
	r := new(jobs.Run)
	if err := json.Unmarshal(doc, r); err != nil {
		return nil, fmt.Errorf("decode run: %w", err)
	}
	r.Priority = r.Priority.Level() // runs stored before priorities are normal
	return r, nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// reasonsBatch bounds the run ids one statement of RunStatusReasons
// reads (SQLite's limit on variables is 32766 nowadays, 999 before).
const reasonsBatch = 500

// RunStatusReasons returns the statusReason of each of the runs ids that
// has not ended and has one: why it waits (no worker to place it on, a
// pool's slot, a retry's backoff) or what it is doing before it runs
// (pulling its image). Unknown ids, runs that ended and runs without a
// reason are left out. It reads the runs' documents as they are now, on
// the reader, for the stage runs of a pipeline run being shown: their
// reasons change far more often than the pipeline run's document.
func (db *DB) RunStatusReasons(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for rest := ids; len(rest) > 0; {
		n := min(len(rest), reasonsBatch)
		args := make([]any, n)
		for i, id := range rest[:n] {
			args[i] = id
		}
		rest = rest[n:]
		rows, err := db.r.QueryContext(ctx, `SELECT run_id, json_extract(CAST(doc AS TEXT), '$.statusReason') FROM runs
			WHERE run_id IN (?`+strings.Repeat(`, ?`, n-1)+`) AND status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELED')
			AND COALESCE(json_extract(CAST(doc AS TEXT), '$.statusReason'), '') != ''`, args...)
		if err != nil {
			return nil, fmt.Errorf("status reasons of %d runs: %w", len(ids), err)
		}
		for rows.Next() {
			var id, reason string
			if err := rows.Scan(&id, &reason); err != nil {
				rows.Close()
				return nil, fmt.Errorf("status reasons of %d runs: %w", len(ids), err)
			}
			out[id] = reason
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("status reasons of %d runs: %w", len(ids), err)
		}
	}
	return out, nil
}
