package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// Group commit. SQLite has one writer and a commit costs far more than an
// insert, so the small writes of concurrent callers (new runs, published
// marks) are gathered into shared transactions: a committer goroutine takes
// whatever is waiting, up to maxGroup writes, runs each in a savepoint of
// one transaction (so that one failing write does not undo the others) and
// commits once. A caller returns when the transaction holding its write has
// committed, so nothing is acknowledged before it is stored.

const maxGroup = 500

// errClosed is returned for writes after Close.
var errClosed = errors.New("storage: database closed")

type committer struct {
	ops  chan *groupOp
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

type groupOp struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error
}

func (db *DB) startCommitter() {
	db.group = committer{ops: make(chan *groupOp, 4*maxGroup), stop: make(chan struct{})}
	db.group.wg.Add(1)
	go func() {
		defer db.group.wg.Done()
		db.commitLoop()
	}()
}

func (db *DB) stopCommitter() {
	db.group.once.Do(func() { close(db.group.stop) })
	db.group.wg.Wait()
}

// inGroup runs fn inside a shared write transaction and returns its error,
// or the commit's.
func (db *DB) inGroup(ctx context.Context, fn func(tx *sql.Tx) error) error {
	op := &groupOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case db.group.ops <- op:
	case <-db.group.stop:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-op.done:
		return err
	case <-db.group.stop:
		// The loop finishes what it took before it stops.
		return <-op.done
	}
}

func (db *DB) commitLoop() {
	batch := make([]*groupOp, 0, maxGroup)
	for {
		select {
		case <-db.group.stop:
			for {
				select {
				case op := <-db.group.ops:
					op.done <- errClosed
				default:
					return
				}
			}
		case op := <-db.group.ops:
			batch = append(batch[:0], op)
		}
	more:
		for len(batch) < maxGroup {
			select {
			case op := <-db.group.ops:
				batch = append(batch, op)
			default:
				break more
			}
		}
		db.commitBatch(batch)
	}
}

func (db *DB) commitBatch(batch []*groupOp) {
	results := make([]error, len(batch))
	err := func() error {
		tx, err := db.w.BeginTx(context.Background(), nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for i, op := range batch {
			if err := op.ctx.Err(); err != nil {
				results[i] = err
				continue
			}
			if _, err := tx.Exec("SAVEPOINT op"); err != nil {
				return err
			}
			if results[i] = op.fn(tx); results[i] != nil {
				if _, err := tx.Exec("ROLLBACK TO op"); err != nil {
					return err
				}
			}
			if _, err := tx.Exec("RELEASE op"); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	for i, op := range batch {
		if err != nil {
			op.done <- fmt.Errorf("commit: %w", err)
			continue
		}
		op.done <- results[i]
	}
}
