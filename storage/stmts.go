package storage

import (
	"context"
	"database/sql"
	"errors"
)

// stmts are the statements of the hot paths, prepared once instead of
// parsed on every call: parsing SQL was 6.5% of the control plane's CPU. They are
// prepared at Open and never change, so they need no lock.
//
// The writer's statements are used inside transactions through
// tx.StmtContext, which reuses the statement already prepared on the
// writer's one connection. They must not be prepared lazily: db.w.Prepare
// needs the connection, which a caller's transaction may be holding.
// The readers' statements are used directly; database/sql prepares them
// on each pooled connection at its first use.
type stmts struct {
	// On the writer.
	selectRunDoc   *sql.Stmt
	selectRunByKey *sql.Stmt
	insertRun      *sql.Stmt
	insertRunTag   *sql.Stmt
	updateRun      *sql.Stmt
	markPublished  *sql.Stmt
	// deleteRun is --run-retention's: compiling it is most of what
	// deleting a run costs, more since its tags go with it (ON DELETE
	// CASCADE adds a program to every statement that deletes runs).
	deleteRun *sql.Stmt

	// On the readers.
	getRun *sql.Stmt
}

func prepareStmts(ctx context.Context, w, r *sql.DB) (*stmts, error) {
	s := new(stmts)
	for _, p := range []struct {
		dst   **sql.Stmt
		db    *sql.DB
		query string
	}{
		{&s.selectRunDoc, w, selectRunDoc},
		{&s.selectRunByKey, w, selectRunByKey},
		{&s.insertRun, w, insertRun},
		{&s.insertRunTag, w, insertRunTag},
		{&s.updateRun, w, updateRun},
		{&s.markPublished, w, markPublished},
		{&s.deleteRun, w, deleteRun},
		{&s.getRun, r, selectRunDoc},
	} {
		stmt, err := p.db.PrepareContext(ctx, p.query)
		if err != nil {
			s.close()
			return nil, err
		}
		*p.dst = stmt
	}
	return s, nil
}

// close closes the statements prepared so far. Closing twice is harmless.
func (s *stmts) close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{s.selectRunDoc, s.selectRunByKey, s.insertRun, s.insertRunTag, s.updateRun, s.markPublished, s.deleteRun, s.getRun} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}
