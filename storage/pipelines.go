package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// PutPipeline stores p as the next version of its pipeline and returns it
// with Version and CreatedAt set. Applying a pipeline identical to its
// latest version stores nothing and returns that version, changed=false.
// The pipeline's schedule row follows the file's suspend flag.
func (db *DB) PutPipeline(ctx context.Context, p *jobs.Pipeline, now time.Time) (out *jobs.Pipeline, changed bool, err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("put pipeline %s: %w", p.Name, err)
	}
	defer tx.Rollback()
	var latest []byte
	err = tx.QueryRowContext(ctx, `SELECT doc FROM pipelines WHERE name = ? ORDER BY version DESC LIMIT 1`, p.Name).Scan(&latest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, false, fmt.Errorf("put pipeline %s: %w", p.Name, err)
	}
	next, prev, err := nextPipeline(latest, p, now)
	if err != nil {
		return nil, false, fmt.Errorf("put pipeline %s: %w", p.Name, err)
	}
	if next == prev {
		return prev, false, nil
	}
	doc, err := json.Marshal(next)
	if err != nil {
		return nil, false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO pipelines (name, version, created_at, doc) VALUES (?, ?, ?, ?)`,
		next.Name, next.Version, next.CreatedAt.UnixNano(), doc); err != nil {
		return nil, false, fmt.Errorf("put pipeline %s: %w", p.Name, err)
	}
	if next.Schedule != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO schedules (name, suspended) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET suspended = excluded.suspended`, next.Name, next.Schedule.Suspend); err != nil {
			return nil, false, fmt.Errorf("put pipeline %s: schedule: %w", p.Name, err)
		}
	} else if _, err := tx.ExecContext(ctx, `DELETE FROM schedules WHERE name = ?`, next.Name); err != nil {
		// Without a schedule its last fire goes too: a schedule added
		// again later starts from then, with no catch-up for the time
		// it did not exist (misfire: runOnce or runAll).
		return nil, false, fmt.Errorf("put pipeline %s: schedule: %w", p.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("put pipeline %s: %w", p.Name, err)
	}
	return next, true, nil
}

// PreviewPipeline says what PutPipeline would do with p now, and writes
// nothing: the version it would store (changed) or the latest version,
// equal to p (not changed), and the latest version before it, nil for a
// pipeline not stored yet. It reads on the reader, outside any
// transaction: an apply between it and a PutPipeline may change the
// outcome.
func (db *DB) PreviewPipeline(ctx context.Context, p *jobs.Pipeline, now time.Time) (out, prev *jobs.Pipeline, changed bool, err error) {
	var latest []byte
	err = db.r.QueryRowContext(ctx, `SELECT doc FROM pipelines WHERE name = ? ORDER BY version DESC LIMIT 1`, p.Name).Scan(&latest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, nil, false, fmt.Errorf("preview pipeline %s: %w", p.Name, err)
	}
	next, prev, err := nextPipeline(latest, p, now)
	if err != nil {
		return nil, nil, false, fmt.Errorf("preview pipeline %s: %w", p.Name, err)
	}
	return next, prev, next != prev, nil
}

// nextPipeline decides what storing p over latest (the latest version's
// document, nil if none) makes: the next version, or prev itself when p
// equals it. prev is latest decoded.
func nextPipeline(latest []byte, p *jobs.Pipeline, now time.Time) (next, prev *jobs.Pipeline, err error) {
	n := *p
	n.Version, n.CreatedAt = 1, now.UTC()
	if latest != nil {
		prev = new(jobs.Pipeline)
		if err := json.Unmarshal(latest, prev); err != nil {
			return nil, nil, err
		}
		if samePipeline(prev, p) {
			return prev, prev, nil
		}
		n.Version = prev.Version + 1
	}
	return &n, prev, nil
}

func samePipeline(a, b *jobs.Pipeline) bool {
	x, y := *a, *b
	x.Version, y.Version = 0, 0
	x.CreatedAt, y.CreatedAt = time.Time{}, time.Time{}
	ja, _ := json.Marshal(&x)
	jb, _ := json.Marshal(&y)
	return string(ja) == string(jb)
}

// GetPipeline returns a version of a pipeline, the latest when version is
// 0, or an error wrapping jobs.ErrNotFound.
func (db *DB) GetPipeline(ctx context.Context, name string, version int) (*jobs.Pipeline, error) {
	var doc []byte
	var err error
	if version == 0 {
		err = db.r.QueryRowContext(ctx, `SELECT doc FROM pipelines WHERE name = ? ORDER BY version DESC LIMIT 1`, name).Scan(&doc)
	} else {
		err = db.r.QueryRowContext(ctx, `SELECT doc FROM pipelines WHERE name = ? AND version = ?`, name, version).Scan(&doc)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("pipeline %s: %w", name, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get pipeline %s: %w", name, err)
	}
	var p jobs.Pipeline
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, fmt.Errorf("get pipeline %s: %w", name, err)
	}
	return &p, nil
}

// PipelineCreated returns when the first version of a pipeline was
// stored: when this pipeline began, as opposed to one of the same name
// deleted before it, whose runs were all created before then. An unknown
// name returns an error wrapping jobs.ErrNotFound.
func (db *DB) PipelineCreated(ctx context.Context, name string) (time.Time, error) {
	var ns sql.NullInt64
	if err := db.r.QueryRowContext(ctx, `SELECT MIN(created_at) FROM pipelines WHERE name = ?`, name).Scan(&ns); err != nil {
		return time.Time{}, fmt.Errorf("pipeline %s: %w", name, err)
	}
	if !ns.Valid {
		return time.Time{}, fmt.Errorf("pipeline %s: %w", name, jobs.ErrNotFound)
	}
	return time.Unix(0, ns.Int64).UTC(), nil
}

// ListPipelines returns the latest version of every pipeline, by name.
func (db *DB) ListPipelines(ctx context.Context) ([]jobs.Pipeline, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT p.doc FROM pipelines p
		JOIN (SELECT name, MAX(version) AS v FROM pipelines GROUP BY name) l ON p.name = l.name AND p.version = l.v
		ORDER BY p.name`)
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	defer rows.Close()
	out := []jobs.Pipeline{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("list pipelines: %w", err)
		}
		var p jobs.Pipeline
		if err := json.Unmarshal(doc, &p); err != nil {
			return nil, fmt.Errorf("list pipelines: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// CreatePipelineRun inserts pr. If its idempotency key is taken, nothing is
// inserted and the run holding it is returned with created=false.
func (db *DB) CreatePipelineRun(ctx context.Context, pr *jobs.PipelineRun) (*jobs.PipelineRun, bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("create pipeline run %s: %w", pr.PipelineRunID, err)
	}
	defer tx.Rollback()
	if pr.IdempotencyKey != "" {
		var doc []byte
		err := tx.QueryRowContext(ctx, `SELECT doc FROM pipeline_runs WHERE idempotency_key = ?`, pr.IdempotencyKey).Scan(&doc)
		if err == nil {
			old, err := decodePipelineRun(doc)
			return old, false, err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, false, fmt.Errorf("create pipeline run %s: %w", pr.PipelineRunID, err)
		}
	}
	doc, err := json.Marshal(pr)
	if err != nil {
		return nil, false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO pipeline_runs (run_id, pipeline, version, status, created_at, idempotency_key, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, pr.PipelineRunID, pr.Pipeline, pr.Version, string(pr.Status),
		pr.CreatedAt.UnixNano(), nullIfEmpty(pr.IdempotencyKey), doc); err != nil {
		return nil, false, fmt.Errorf("create pipeline run %s: %w", pr.PipelineRunID, err)
	}
	if err := writeStages(ctx, tx, pr); err != nil {
		return nil, false, fmt.Errorf("create pipeline run %s: %w", pr.PipelineRunID, err)
	}
	outboxed, err := outboxPipelineRun(ctx, tx, db.hooksNow(), pr, "") // webhooks.go
	if err != nil {
		return nil, false, fmt.Errorf("create pipeline run %s: %w", pr.PipelineRunID, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("create pipeline run %s: %w", pr.PipelineRunID, err)
	}
	if outboxed {
		db.notifyOutbox()
	}
	return pr, true, nil
}

func writeStages(ctx context.Context, tx *sql.Tx, pr *jobs.PipelineRun) error {
	for _, st := range pr.Stages {
		ids := make([]string, 0, len(st.Runs))
		for _, r := range st.Runs {
			ids = append(ids, r.RunID)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pipeline_stages (pipeline_run_id, stage, status, run_ids) VALUES (?, ?, ?, ?)
			ON CONFLICT (pipeline_run_id, stage) DO UPDATE SET status = excluded.status, run_ids = excluded.run_ids`,
			pr.PipelineRunID, st.Name, string(st.Status), strings.Join(ids, " ")); err != nil {
			return err
		}
	}
	return nil
}

func decodePipelineRun(doc []byte) (*jobs.PipelineRun, error) {
	var pr jobs.PipelineRun
	if err := json.Unmarshal(doc, &pr); err != nil {
		return nil, fmt.Errorf("decode pipeline run: %w", err)
	}
	return &pr, nil
}

// GetPipelineRun returns a pipeline run or an error wrapping
// jobs.ErrNotFound.
func (db *DB) GetPipelineRun(ctx context.Context, id string) (*jobs.PipelineRun, error) {
	var doc []byte
	err := db.r.QueryRowContext(ctx, `SELECT doc FROM pipeline_runs WHERE run_id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("pipeline run %s: %w", id, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get pipeline run %s: %w", id, err)
	}
	return decodePipelineRun(doc)
}

// UpdatePipelineRun reads the run, calls fn and, if fn returns true, writes
// it back with its stage rows, in one transaction. It returns the run as
// stored.
func (db *DB) UpdatePipelineRun(ctx context.Context, id string, fn func(*jobs.PipelineRun) bool) (*jobs.PipelineRun, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update pipeline run %s: %w", id, err)
	}
	defer tx.Rollback()
	var doc []byte
	err = tx.QueryRowContext(ctx, `SELECT doc FROM pipeline_runs WHERE run_id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("pipeline run %s: %w", id, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("update pipeline run %s: %w", id, err)
	}
	pr, err := decodePipelineRun(doc)
	if err != nil {
		return nil, err
	}
	before := pr.Status
	if !fn(pr) {
		return decodePipelineRun(doc)
	}
	if pr.PipelineRunID != id {
		return nil, fmt.Errorf("update pipeline run %s: the update changed its id", id)
	}
	doc, err = json.Marshal(pr)
	if err != nil {
		return nil, err
	}
	var finished int64
	if pr.FinishedAt != nil {
		finished = pr.FinishedAt.UnixNano()
	}
	if _, err := tx.ExecContext(ctx, `UPDATE pipeline_runs SET status = ?, doc = ?, finished_at = ? WHERE run_id = ?`,
		string(pr.Status), doc, finished, id); err != nil {
		return nil, fmt.Errorf("update pipeline run %s: %w", id, err)
	}
	if err := writeStages(ctx, tx, pr); err != nil {
		return nil, fmt.Errorf("update pipeline run %s: %w", id, err)
	}
	outboxed, err := outboxPipelineRun(ctx, tx, db.hooksNow(), pr, before) // webhooks.go
	if err != nil {
		return nil, fmt.Errorf("update pipeline run %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update pipeline run %s: %w", id, err)
	}
	if outboxed {
		db.notifyOutbox()
	}
	return pr, nil
}

// PipelineRunFilter selects pipeline runs; zero fields select everything.
type PipelineRunFilter struct {
	Pipeline string
	// Current selects only the runs of the pipelines now stored, not those
	// of a pipeline of the same name deleted before: runs created since
	// their pipeline's first version (PipelineCreated).
	Current bool
	Active  bool // only runs that have not ended
	// Status selects the runs in this status.
	Status jobs.Status
	Limit  int
}

// ListPipelineRuns returns pipeline runs, newest first.
func (db *DB) ListPipelineRuns(ctx context.Context, f PipelineRunFilter) ([]jobs.PipelineRun, error) {
	q := `SELECT doc FROM pipeline_runs WHERE 1 = 1`
	var args []any
	if f.Pipeline != "" {
		q += ` AND pipeline = ?`
		args = append(args, f.Pipeline)
	}
	if f.Current {
		q += ` AND created_at >= (SELECT MIN(p.created_at) FROM pipelines p WHERE p.name = pipeline_runs.pipeline)`
	}
	if f.Active {
		q += ` AND status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELED')`
	}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	q += ` ORDER BY run_id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list pipeline runs: %w", err)
	}
	defer rows.Close()
	out := []jobs.PipelineRun{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("list pipeline runs: %w", err)
		}
		pr, err := decodePipelineRun(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, *pr)
	}
	return out, rows.Err()
}

// EndedPipelineRuns returns the runs of pipeline that ended at or after
// since, latest end first, at most limit. A retried run ends long after
// it was created: the runs that ended last are not those ListPipelineRuns
// returns first (newest created). It seeks the pipeline_runs_ends index.
func (db *DB) EndedPipelineRuns(ctx context.Context, pipeline string, since time.Time, limit int) ([]jobs.PipelineRun, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT doc FROM pipeline_runs INDEXED BY pipeline_runs_ends
		WHERE pipeline = ? AND status IN ('SUCCEEDED', 'FAILED', 'CANCELED') AND finished_at > 0 AND finished_at >= ?
		ORDER BY finished_at DESC LIMIT ?`, pipeline, since.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("ended pipeline runs of %s: %w", pipeline, err)
	}
	defer rows.Close()
	out := []jobs.PipelineRun{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("ended pipeline runs of %s: %w", pipeline, err)
		}
		pr, err := decodePipelineRun(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, *pr)
	}
	return out, rows.Err()
}

// ScheduleState is what the store keeps of a schedule beside its pipeline.
type ScheduleState struct {
	Name      string
	Suspended bool
	// LastFire is the latest scheduled time handled; zero before the first.
	LastFire time.Time
	// LastRun is the scheduled time of the latest fire that stored or
	// found a pipeline run; zero before the first.
	LastRun time.Time
}

// ListSchedules returns the state of every schedule, by name.
func (db *DB) ListSchedules(ctx context.Context) ([]ScheduleState, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT name, suspended, last_fire, last_run FROM schedules ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	defer rows.Close()
	var out []ScheduleState
	for rows.Next() {
		var s ScheduleState
		var last, run int64
		if err := rows.Scan(&s.Name, &s.Suspended, &last, &run); err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if last != 0 {
			s.LastFire = time.Unix(0, last).UTC()
		}
		if run != 0 {
			s.LastRun = time.Unix(0, run).UTC()
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// SetScheduleSuspended suspends or resumes a schedule.
func (db *DB) SetScheduleSuspended(ctx context.Context, name string, suspended bool) error {
	res, err := db.w.ExecContext(ctx, `UPDATE schedules SET suspended = ? WHERE name = ?`, suspended, name)
	if err != nil {
		return fmt.Errorf("schedule %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("schedule %s: %w", name, jobs.ErrNotFound)
	}
	return nil
}

// SetScheduleLastFire records the latest scheduled time handled; it never
// moves backwards.
func (db *DB) SetScheduleLastFire(ctx context.Context, name string, t time.Time) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE schedules SET last_fire = MAX(last_fire, ?) WHERE name = ?`,
		t.UnixNano(), name); err != nil {
		return fmt.Errorf("schedule %s: %w", name, err)
	}
	return nil
}

// SetScheduleLastRun records the scheduled time of a fire that stored or
// found a pipeline run; it never moves backwards, so a fire recorded again
// changes nothing.
func (db *DB) SetScheduleLastRun(ctx context.Context, name string, t time.Time) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE schedules SET last_run = MAX(last_run, ?) WHERE name = ?`,
		t.UnixNano(), name); err != nil {
		return fmt.Errorf("schedule %s: last run: %w", name, err)
	}
	return nil
}

// PipelineEnd is when a pipeline's latest run of a terminal status ended.
type PipelineEnd struct {
	Pipeline string
	Status   jobs.Status
	At       time.Time
}

// LastPipelineEnds returns, for every pipeline (the deleted ones left out)
// and terminal status, when its latest run of that status ended, in
// pipeline order; a status none of its runs ended with is left out. A
// pipeline deleted and applied again counts the runs that ended since its
// new first version. Each is one seek in the pipeline_runs_ends index,
// however many runs are recorded.
func (db *DB) LastPipelineEnds(ctx context.Context) ([]PipelineEnd, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT p.name, s.status,
		(SELECT MAX(finished_at) FROM pipeline_runs INDEXED BY pipeline_runs_ends
			WHERE pipeline = p.name AND status = s.status AND finished_at >= p.since AND finished_at > 0)
		FROM (SELECT name, MIN(created_at) AS since FROM pipelines GROUP BY name) p,
			(SELECT 'SUCCEEDED' AS status UNION ALL SELECT 'FAILED' UNION ALL SELECT 'CANCELED') s
		ORDER BY p.name, s.status`)
	if err != nil {
		return nil, fmt.Errorf("last pipeline ends: %w", err)
	}
	defer rows.Close()
	var out []PipelineEnd
	for rows.Next() {
		var (
			name, status string
			at           sql.NullInt64
		)
		if err := rows.Scan(&name, &status, &at); err != nil {
			return nil, fmt.Errorf("last pipeline ends: %w", err)
		}
		if at.Valid {
			out = append(out, PipelineEnd{Pipeline: name, Status: jobs.Status(status), At: time.Unix(0, at.Int64)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("last pipeline ends: %w", err)
	}
	return out, nil
}

// PipelineWaiting counts a pipeline's runs waiting PENDING for a place.
type PipelineWaiting struct {
	Pipeline string
	Waiting  int
}

// PipelineRunsWaiting returns, for every pipeline (the deleted ones left
// out) in name order, how many of its runs wait PENDING: for its
// maxActiveRuns or a backfill's maxParallel. A pipeline deleted and
// applied again counts the runs created since its new first version. It
// reads the pipelines' names and the PENDING runs (the status index):
// its cost follows their number, not that of the runs recorded.
func (db *DB) PipelineRunsWaiting(ctx context.Context) ([]PipelineWaiting, error) {
	tx, err := db.r.BeginTx(ctx, nil) // one snapshot for both reads
	if err != nil {
		return nil, fmt.Errorf("pipeline runs waiting: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT name, MIN(created_at) FROM pipelines GROUP BY name ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("pipeline runs waiting: %w", err)
	}
	var out []PipelineWaiting
	since := map[string]int64{}
	for rows.Next() {
		var (
			name string
			at   int64
		)
		if err := rows.Scan(&name, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pipeline runs waiting: %w", err)
		}
		since[name] = at
		out = append(out, PipelineWaiting{Pipeline: name})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pipeline runs waiting: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT pipeline, created_at FROM pipeline_runs INDEXED BY pipeline_runs_status
		WHERE status = 'PENDING'`)
	if err != nil {
		return nil, fmt.Errorf("pipeline runs waiting: %w", err)
	}
	defer rows.Close()
	n := map[string]int{}
	for rows.Next() {
		var (
			name string
			at   int64
		)
		if err := rows.Scan(&name, &at); err != nil {
			return nil, fmt.Errorf("pipeline runs waiting: %w", err)
		}
		if s, ok := since[name]; ok && at >= s {
			n[name]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pipeline runs waiting: %w", err)
	}
	for i := range out {
		out[i].Waiting = n[out[i].Pipeline]
	}
	return out, nil
}

// RetryPipelineRun reads the pipeline run, lets retry make it active
// again, PENDING or RUNNING (or refuse, returning an error), and writes
// it back with its stage rows, in one transaction: two retries of one run
// cannot both see it ended. retry is told the latest version of the run's
// pipeline, read in that transaction (nil when the pipeline was deleted
// since the run was created, even if one of the same name was applied
// again), so that an apply or a delete racing the retry comes wholly
// before or after it; and when the run's stage files were deleted (zero
// for not yet). The run's end and data deletion are cleared, so that its
// retention counts from its next end.
func (db *DB) RetryPipelineRun(ctx context.Context, id string, retry func(pr *jobs.PipelineRun, latest *jobs.Pipeline, dataDeleted time.Time) error) (*jobs.PipelineRun, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("retry pipeline run %s: %w", id, err)
	}
	defer tx.Rollback()
	var doc []byte
	var deleted int64
	err = tx.QueryRowContext(ctx, `SELECT doc, data_deleted_at FROM pipeline_runs WHERE run_id = ?`, id).Scan(&doc, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("pipeline run %s: %w", id, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("retry pipeline run %s: %w", id, err)
	}
	pr, err := decodePipelineRun(doc)
	if err != nil {
		return nil, err
	}
	var deletedAt time.Time
	if deleted != 0 {
		deletedAt = time.Unix(0, deleted).UTC()
	}
	latest, err := latestPipelineOf(ctx, tx, pr)
	if err != nil {
		return nil, fmt.Errorf("retry pipeline run %s: %w", id, err)
	}
	if err := retry(pr, latest, deletedAt); err != nil {
		return nil, err
	}
	if pr.PipelineRunID != id || pr.Status.Terminal() || pr.FinishedAt != nil {
		return nil, fmt.Errorf("retry pipeline run %s: the retry left it ended or changed its id", id)
	}
	if doc, err = json.Marshal(pr); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE pipeline_runs SET status = ?, doc = ?, finished_at = 0, data_deleted_at = 0 WHERE run_id = ?`,
		string(pr.Status), doc, id); err != nil {
		return nil, fmt.Errorf("retry pipeline run %s: %w", id, err)
	}
	if err := writeStages(ctx, tx, pr); err != nil {
		return nil, fmt.Errorf("retry pipeline run %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("retry pipeline run %s: %w", id, err)
	}
	return pr, nil
}

// PipelineRunByKey returns the pipeline run holding the idempotency key,
// on the reader; none is an error wrapping jobs.ErrNotFound.
func (db *DB) PipelineRunByKey(ctx context.Context, key string) (*jobs.PipelineRun, error) {
	var doc []byte
	err := db.r.QueryRowContext(ctx, `SELECT doc FROM pipeline_runs WHERE idempotency_key = ?`, key).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("pipeline run key %s: %w", key, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline run key %s: %w", key, err)
	}
	return decodePipelineRun(doc)
}

// latestPipelineOf reads, in tx, the latest version of pr's pipeline: nil
// when none is stored, or the first one stored came after pr (the
// pipeline pr ran was deleted, and another of its name applied since).
func latestPipelineOf(ctx context.Context, tx *sql.Tx, pr *jobs.PipelineRun) (*jobs.Pipeline, error) {
	var (
		doc   []byte
		since int64
	)
	err := tx.QueryRowContext(ctx, `SELECT doc, (SELECT MIN(created_at) FROM pipelines WHERE name = ?1)
		FROM pipelines WHERE name = ?1 ORDER BY version DESC LIMIT 1`, pr.Pipeline).Scan(&doc, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", pr.Pipeline, err)
	}
	if time.Unix(0, since).After(pr.CreatedAt) {
		return nil, nil
	}
	var p jobs.Pipeline
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", pr.Pipeline, err)
	}
	return &p, nil
}

// previousPipelineRuns finds the previous run of each of pending (a
// pipeline's PENDING runs, in run id order) that waits for its past
// (PipelineRunQueue.Previous). The earliest is looked up alone
// (previousPipelineRun); for the others, the runs of the pipeline with a
// scheduled time between the earliest and the latest are read in one
// walk of the pipeline index, the pending ones themselves among them:
// each run's previous is the one before it in that walk. A backfill's
// runs, together, cost one lookup and one short walk, not a lookup each.
func previousPipelineRuns(ctx context.Context, tx *sql.Tx, p *jobs.Pipeline, pending []*jobs.PipelineRun) (map[string]*jobs.PipelineRun, error) {
	var waiting []*jobs.PipelineRun
	byID := make(map[string]*jobs.PipelineRun, len(pending))
	for _, pr := range pending {
		byID[pr.PipelineRunID] = pr
		if jobs.WaitsForPast(p, pr) {
			waiting = append(waiting, pr)
		}
	}
	out := map[string]*jobs.PipelineRun{}
	if len(waiting) == 0 {
		return out, nil
	}
	first := waiting[0]
	prev, err := previousPipelineRun(ctx, tx, first)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", first.PipelineRunID, err)
	}
	if prev != nil {
		if pr := byID[prev.PipelineRunID]; pr != nil {
			prev = pr
		}
		out[first.PipelineRunID] = prev
	}
	if len(waiting) == 1 {
		return out, nil
	}
	last := waiting[len(waiting)-1]
	rows, err := tx.QueryContext(ctx, `SELECT run_id, status, json_extract(CAST(doc AS TEXT), '$.scheduledTime'),
		COALESCE(json_extract(CAST(doc AS TEXT), '$.stopRequested'), 0)
		FROM pipeline_runs INDEXED BY pipeline_runs_pipeline
		WHERE pipeline = ?1 AND run_id >= ?2 AND run_id <= ?3
		  AND created_at >= (SELECT MIN(p.created_at) FROM pipelines p WHERE p.name = ?1)
		  AND json_extract(CAST(doc AS TEXT), '$.scheduledTime') IS NOT NULL
		ORDER BY run_id`, first.Pipeline, first.PipelineRunID, last.PipelineRunID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var before *jobs.PipelineRun
	for rows.Next() {
		run, err := scanPreviousRun(rows.Scan, first.Pipeline)
		if err != nil {
			return nil, err
		}
		if pr := byID[run.PipelineRunID]; pr != nil {
			run = pr
			if before != nil && jobs.WaitsForPast(p, pr) && pr != first {
				out[pr.PipelineRunID] = before
			}
		}
		before = run
	}
	return out, rows.Err()
}

// scanPreviousRun reads a row of run id, status, scheduled time and
// stopRequested into a run of pipeline.
func scanPreviousRun(scan func(...any) error, pipeline string) (*jobs.PipelineRun, error) {
	var (
		prev      jobs.PipelineRun
		status    string
		scheduled string
		stop      int
	)
	if err := scan(&prev.PipelineRunID, &status, &scheduled, &stop); err != nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, scheduled)
	if err != nil {
		return nil, fmt.Errorf("run %s: scheduled time %q: %w", prev.PipelineRunID, scheduled, err)
	}
	t = t.UTC()
	prev.Pipeline, prev.Status, prev.ScheduledTime, prev.StopRequested = pipeline, jobs.Status(status), &t, stop != 0
	return &prev, nil
}

// previousPipelineRun returns the run of pr's pipeline with the latest
// scheduled time before pr's (dependsOnPast), or nil when there is none:
// the runs without a scheduled time are passed over, as are those of a
// pipeline of the same name deleted before (PipelineRunFilter.Current).
// The run ids of scheduled times hold the time, to the millisecond, as
// their ULID's (server's scheduledRunID): the pipeline index walked back
// from pr's id meets them latest first, and a run id orders two times
// within one millisecond. Only the manual runs in between are read and
// passed over. The run returned has its id, status, scheduled time and
// StopRequested only.
func previousPipelineRun(ctx context.Context, q querier, pr *jobs.PipelineRun) (*jobs.PipelineRun, error) {
	row := q.QueryRowContext(ctx, `SELECT run_id, status, json_extract(CAST(doc AS TEXT), '$.scheduledTime'),
		COALESCE(json_extract(CAST(doc AS TEXT), '$.stopRequested'), 0)
		FROM pipeline_runs INDEXED BY pipeline_runs_pipeline
		WHERE pipeline = ?1 AND run_id < ?2
		  AND json_extract(CAST(doc AS TEXT), '$.scheduledTime') IS NOT NULL
		  AND created_at >= (SELECT MIN(p.created_at) FROM pipelines p WHERE p.name = ?1)
		ORDER BY run_id DESC LIMIT 1`, pr.Pipeline, pr.PipelineRunID)
	prev, err := scanPreviousRun(row.Scan, pr.Pipeline)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return prev, err
}

// PipelineRunQueue is what PromotePipelineRuns reads of a pipeline, for
// its decide function.
type PipelineRunQueue struct {
	// Pipeline is the latest version of the pipeline.
	Pipeline *jobs.Pipeline
	// Running counts its RUNNING runs, ByBackfill those of each backfill
	// group (by group id).
	Running    int
	ByBackfill map[string]int
	// Pending are its PENDING runs, in run id order.
	Pending []*jobs.PipelineRun
	// Previous holds, when the pipeline has dependsOnPast, the previous
	// run of each pending run that has a scheduled time, by the pending
	// run's id (previousPipelineRun); none, the first, is absent. A
	// previous run that is PENDING too is its element of Pending. One
	// read otherwise carries its id, status, scheduled time and whether a
	// stop was asked for only.
	Previous map[string]*jobs.PipelineRun
}

// PromotePipelineRuns reads the runs of pipeline that have not ended
// (those of a pipeline of the same name deleted before left out, as
// PipelineRunFilter.Current), lets decide change its PENDING runs (start
// some, tell the others why they wait) and writes those it returns, all
// in one transaction: the server is the single writer, so no two
// decisions can both see the same free place, before or after a crash.
// It returns the runs written. A pipeline with no PENDING run, or none
// stored, costs one index seek on a reader and decide is not called.
func (db *DB) PromotePipelineRuns(ctx context.Context, pipeline string, decide func(*PipelineRunQueue) []*jobs.PipelineRun) ([]*jobs.PipelineRun, error) {
	// Most pipelines have no run waiting: a reader tells, without taking
	// the writer from the application of events. A run stored PENDING
	// after this look is promoted by its creator, which looks again.
	// The status index holds the runs not ended together, few beside the
	// pipeline's history.
	const current = ` AND pipeline = ?1 AND created_at >= (SELECT MIN(p.created_at) FROM pipelines p WHERE p.name = ?1)`
	var one int
	err := db.r.QueryRowContext(ctx, `SELECT 1 FROM pipeline_runs INDEXED BY pipeline_runs_status
		WHERE status = 'PENDING'`+current+` LIMIT 1`, pipeline).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("promote runs of %s: %w", pipeline, err)
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("promote runs of %s: %w", pipeline, err)
	}
	defer tx.Rollback()
	q := PipelineRunQueue{ByBackfill: map[string]int{}}
	rows, err := tx.QueryContext(ctx, `SELECT doc FROM pipeline_runs INDEXED BY pipeline_runs_status
		WHERE status = 'PENDING'`+current+` ORDER BY run_id`, pipeline)
	if err != nil {
		return nil, fmt.Errorf("promote runs of %s: %w", pipeline, err)
	}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			rows.Close()
			return nil, fmt.Errorf("promote runs of %s: %w", pipeline, err)
		}
		pr, err := decodePipelineRun(doc)
		if err != nil {
			rows.Close()
			return nil, err
		}
		q.Pending = append(q.Pending, pr)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("promote runs of %s: %w", pipeline, err)
	}
	if len(q.Pending) == 0 {
		return nil, nil
	}
	var doc []byte
	if err := tx.QueryRowContext(ctx, `SELECT doc FROM pipelines WHERE name = ? ORDER BY version DESC LIMIT 1`, pipeline).Scan(&doc); err != nil {
		return nil, fmt.Errorf("promote runs of %s: pipeline: %w", pipeline, err)
	}
	if err := json.Unmarshal(doc, &q.Pipeline); err != nil {
		return nil, fmt.Errorf("promote runs of %s: pipeline: %w", pipeline, err)
	}
	if q.Pipeline.DependsOnPast {
		byID := make(map[string]*jobs.PipelineRun, len(q.Pending))
		for _, pr := range q.Pending {
			byID[pr.PipelineRunID] = pr
		}
		if q.Previous, err = previousPipelineRuns(ctx, tx, q.Pipeline, q.Pending); err != nil {
			return nil, fmt.Errorf("promote runs of %s: previous runs: %w", pipeline, err)
		}
	}
	// A running run's backfill group only, not its whole document.
	rows, err = tx.QueryContext(ctx, `SELECT COALESCE(json_extract(CAST(doc AS TEXT), '$.backfill.id'), '')
		FROM pipeline_runs INDEXED BY pipeline_runs_status WHERE status = 'RUNNING'`+current, pipeline)
	if err != nil {
		return nil, fmt.Errorf("promote runs of %s: %w", pipeline, err)
	}
	for rows.Next() {
		var group string
		if err := rows.Scan(&group); err != nil {
			rows.Close()
			return nil, fmt.Errorf("promote runs of %s: %w", pipeline, err)
		}
		q.Running++
		if group != "" {
			q.ByBackfill[group]++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("promote runs of %s: %w", pipeline, err)
	}
	changed := decide(&q)
	if len(changed) == 0 {
		return nil, nil
	}
	pending := make(map[string]bool, len(q.Pending))
	for _, pr := range q.Pending {
		pending[pr.PipelineRunID] = true
	}
	for _, pr := range changed {
		if !pending[pr.PipelineRunID] || pr.Status != jobs.StatusPending && pr.Status != jobs.StatusRunning {
			return nil, fmt.Errorf("promote runs of %s: run %s: not one of its PENDING runs, or made %s", pipeline, pr.PipelineRunID, pr.Status)
		}
		doc, err := json.Marshal(pr)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE pipeline_runs SET status = ?, doc = ? WHERE run_id = ?`,
			string(pr.Status), doc, pr.PipelineRunID); err != nil {
			return nil, fmt.Errorf("promote runs of %s: run %s: %w", pipeline, pr.PipelineRunID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("promote runs of %s: %w", pipeline, err)
	}
	return changed, nil
}
