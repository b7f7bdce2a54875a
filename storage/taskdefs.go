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

// RegisterTaskDef stores td as the next revision of its family, ACTIVE, and
// returns it with its revision set. Revisions are never reused, even after
// deregistration, as in ECS.
func (db *DB) RegisterTaskDef(ctx context.Context, td jobs.TaskDefinition, now time.Time) (*jobs.RegisteredTaskDefinition, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("register task definition %s: %w", td.Family, err)
	}
	defer tx.Rollback()
	var last int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(revision), 0) FROM taskdefs WHERE family = ?`,
		td.Family).Scan(&last); err != nil {
		return nil, fmt.Errorf("register task definition %s: %w", td.Family, err)
	}
	td.Revision = last + 1
	doc, err := json.Marshal(td)
	if err != nil {
		return nil, fmt.Errorf("register task definition %s: %w", td.Family, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO taskdefs (family, revision, status, registered_at, doc)
		VALUES (?, ?, ?, ?, ?)`, td.Family, td.Revision, jobs.TaskDefActive, now.UnixNano(), doc); err != nil {
		return nil, fmt.Errorf("register task definition %s: %w", td.Family, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("register task definition %s: %w", td.Family, err)
	}
	return &jobs.RegisteredTaskDefinition{TaskDefinition: td, Status: jobs.TaskDefActive, RegisteredAt: now.UTC()}, nil
}

// LatestTaskDef returns the highest revision of a family, ACTIVE or
// INACTIVE: the one RegisterTaskDef's next revision follows. A family
// never registered is an error wrapping jobs.ErrNotFound.
func (db *DB) LatestTaskDef(ctx context.Context, family string) (*jobs.RegisteredTaskDefinition, error) {
	td, err := scanTaskDef(db.r.QueryRowContext(ctx, selectTaskDef+` WHERE family = ? ORDER BY revision DESC LIMIT 1`, family))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("task definition %s: %w", family, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("task definition %s: %w", family, err)
	}
	return td, nil
}

const selectTaskDef = `SELECT status, registered_at, deregistered_at, doc FROM taskdefs`

// GetTaskDef returns a revision of a family; revision 0 means the latest
// ACTIVE one. A missing one is an error wrapping jobs.ErrNotFound.
func (db *DB) GetTaskDef(ctx context.Context, family string, revision int) (*jobs.RegisteredTaskDefinition, error) {
	var row *sql.Row
	if revision == 0 {
		row = db.r.QueryRowContext(ctx, selectTaskDef+` WHERE family = ? AND status = ? ORDER BY revision DESC LIMIT 1`,
			family, jobs.TaskDefActive)
	} else {
		row = db.r.QueryRowContext(ctx, selectTaskDef+` WHERE family = ? AND revision = ?`, family, revision)
	}
	td, err := scanTaskDef(row)
	if errors.Is(err, sql.ErrNoRows) {
		if revision == 0 {
			return nil, fmt.Errorf("task definition %s has no ACTIVE revision: %w", family, jobs.ErrNotFound)
		}
		return nil, fmt.Errorf("task definition %s:%d: %w", family, revision, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("task definition %s: %w", family, err)
	}
	return td, nil
}

// TaskDefFilter selects task definitions; the zero value lists the ACTIVE
// revisions of every family.
type TaskDefFilter struct {
	Family string
	// Status is ACTIVE, INACTIVE, or "" for ACTIVE; "ALL" lists both.
	Status string
	Limit  int
}

// ListTaskDefs returns revisions by family, then revision, newest last.
func (db *DB) ListTaskDefs(ctx context.Context, f TaskDefFilter) ([]jobs.RegisteredTaskDefinition, error) {
	var where []string
	var args []any
	if f.Family != "" {
		where, args = append(where, "family = ?"), append(args, f.Family)
	}
	switch f.Status {
	case "ALL":
	case "":
		where, args = append(where, "status = ?"), append(args, jobs.TaskDefActive)
	default:
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	q := selectTaskDef
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY family, revision"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list task definitions: %w", err)
	}
	defer rows.Close()
	out := []jobs.RegisteredTaskDefinition{}
	for rows.Next() {
		td, err := scanTaskDef(rows)
		if err != nil {
			return nil, fmt.Errorf("list task definitions: %w", err)
		}
		out = append(out, *td)
	}
	return out, rows.Err()
}

// DeregisterTaskDef marks a revision INACTIVE: it starts no new runs, runs
// already submitted go on. Deregistering an INACTIVE revision changes
// nothing.
func (db *DB) DeregisterTaskDef(ctx context.Context, family string, revision int, now time.Time) (*jobs.RegisteredTaskDefinition, error) {
	if _, err := db.w.ExecContext(ctx, `UPDATE taskdefs SET status = ?, deregistered_at = ?
		WHERE family = ? AND revision = ? AND status = ?`,
		jobs.TaskDefInactive, now.UnixNano(), family, revision, jobs.TaskDefActive); err != nil {
		return nil, fmt.Errorf("deregister task definition %s:%d: %w", family, revision, err)
	}
	return db.GetTaskDef(ctx, family, revision)
}

type taskDefRow interface{ Scan(dest ...any) error }

func scanTaskDef(s taskDefRow) (*jobs.RegisteredTaskDefinition, error) {
	var (
		status       string
		registered   int64
		deregistered sql.NullInt64
		doc          []byte
	)
	if err := s.Scan(&status, &registered, &deregistered, &doc); err != nil {
		return nil, err
	}
	out := &jobs.RegisteredTaskDefinition{Status: status, RegisteredAt: time.Unix(0, registered).UTC()}
	if err := json.Unmarshal(doc, &out.TaskDefinition); err != nil {
		return nil, fmt.Errorf("decode task definition: %w", err)
	}
	if deregistered.Valid {
		t := time.Unix(0, deregistered.Int64).UTC()
		out.DeregisteredAt = &t
	}
	return out, nil
}
