package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit. SQLite has one writer and a commit costs far more than an
// insert, so the small writes of concurrent callers (new runs, published
// marks) are gathered into shared transactions: a committer goroutine takes
// whatever is waiting, up to maxGroup writes, runs them in one transaction
// and commits once. If a write fails, the committer rolls the transaction
// back and runs the batch again with each write in a savepoint, so that the
// failing write alone is undone; savepoints cost two statements a write,
// which only this rare path pays. A write's function may thus run twice: it
// must write only through its tx, and reset on each run whatever it sets.
// A caller returns when the transaction holding its write has committed, so
// nothing is acknowledged before it is stored.

const maxGroup = 500

// errClosed is returned for writes after Close.
var errClosed = errors.New("storage: database closed")

type committer struct {
	ops  chan *groupOp
	stop chan struct{}
	// queue is held for reading while a write is put on ops and for
	// writing while stop is closed: once the loop sees stop, nothing more
	// comes on ops, and the ops it drains are all there are. Without it a
	// write after Close could be put on ops after the loop's last look
	// (a select picks at random among ready cases) and wait forever.
	queue   sync.RWMutex
	closed  bool // under queue
	once    sync.Once
	wg      sync.WaitGroup
	commits atomic.Int64 // batches run, for tests
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
	db.group.once.Do(func() {
		// A writer blocked on a full ops holds queue for reading until the
		// loop, still running, takes its write.
		db.group.queue.Lock()
		db.group.closed = true
		close(db.group.stop)
		db.group.queue.Unlock()
	})
	db.group.wg.Wait()
}

// inGroup runs fn inside a shared write transaction and returns its error,
// or the commit's. fn may run twice, each time in a new transaction.
func (db *DB) inGroup(ctx context.Context, fn func(tx *sql.Tx) error) error {
	op := &groupOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	db.group.queue.RLock()
	if db.group.closed {
		db.group.queue.RUnlock()
		return errClosed
	}
	select {
	case db.group.ops <- op:
	case <-ctx.Done():
		db.group.queue.RUnlock()
		return ctx.Err()
	}
	db.group.queue.RUnlock()
	// The loop answers every op on ops: in a batch, or with errClosed as
	// it stops.
	return <-op.done
}

// groupGather is how long, under load, a batch may wait for more writes.
// Committing whatever was waiting made batches of two or three writes
// under the control-plane benchmark (8,000 commits for 20,000 writes), and
// each commit writes every page it touched to the WAL. A write that
// follows the last commit by more than groupGather (a quiet store) is
// committed at once.
const groupGather = time.Millisecond

func (db *DB) commitLoop() {
	batch := make([]*groupOp, 0, maxGroup)
	var last time.Time // when the last commit ended
	gather := time.NewTimer(0)
	<-gather.C
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
		if wait := groupGather - time.Since(last); wait > 0 {
			gather.Reset(wait)
		wait:
			for len(batch) < maxGroup {
				select {
				case op := <-db.group.ops:
					batch = append(batch, op)
				case <-gather.C:
					break wait
				case <-db.group.stop:
					break wait // finish what was taken, then stop
				}
			}
			gather.Stop()
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
		// Counted before the writers hear back, so that a test that
		// counts after its writes returned sees them all.
		db.group.commits.Add(1)
		db.commitBatch(batch)
		last = time.Now()
	}
}

// errWriteFailed stops a batch run without savepoints at its first failing
// write.
var errWriteFailed = errors.New("storage: a write of the batch failed")

func (db *DB) commitBatch(batch []*groupOp) {
	results := make([]error, len(batch))
	err := db.runBatch(batch, results, false)
	if errors.Is(err, errWriteFailed) {
		// Its rollback undid the writes that succeeded too: redo them all.
		err = db.runBatch(batch, results, true)
	}
	for i, op := range batch {
		if err != nil {
			op.done <- fmt.Errorf("commit: %w", err)
			continue
		}
		op.done <- results[i]
	}
}

// runBatch runs the writes of batch in one transaction and commits it,
// setting results. Without savepoints, it returns errWriteFailed, having
// committed nothing, as soon as a write fails. Ops whose context is done
// are skipped.
func (db *DB) runBatch(batch []*groupOp, results []error, savepoints bool) error {
	tx, err := db.w.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for i, op := range batch {
		if results[i] = op.ctx.Err(); results[i] != nil {
			continue
		}
		if !savepoints {
			if results[i] = op.fn(tx); results[i] != nil {
				return errWriteFailed
			}
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
}

// uninterrupted is the context of a hot write's statements: ctx without its
// cancellation. With a context that can end, the SQLite driver starts a
// goroutine for every statement to interrupt it, and database/sql one for
// every transaction and row; a write of a few rows ends within
// milliseconds, is atomic, and its caller checked ctx before it began.
func uninterrupted(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
