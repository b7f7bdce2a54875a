package storage

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"modernc.org/sqlite"
)

// waitUntil polls cond, for states another goroutine reaches with no
// signal to wait on.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// A batch in which writes fail is rolled back and redone with savepoints:
// the failing writes alone are undone, whole, including those that collide
// with a write earlier in the same batch, and every caller gets its own
// result.
func TestGroupCommitFailingWrites(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	keyed := func(k string) func(*jobs.Run) { return func(r *jobs.Run) { r.IdempotencyKey = k } }
	taken := newRun(0)
	mustCreate(t, db, taken)
	r1, r2, r5 := newRun(1), newRun(2, keyed("k2")), newRun(5)
	canceled, cancel := context.WithCancel(ctx)

	create := func(ctx context.Context, r *jobs.Run, wantID string, wantCreated bool, wantCode string) func() error {
		return func() error {
			got, created, err := db.CreateRun(ctx, r)
			switch {
			case wantCode != "":
				if jobs.ErrorCode(err) != wantCode {
					t.Errorf("CreateRun %s = %v; want code %s", r.RunID, err, wantCode)
				}
			case err != nil:
				return err
			case got.RunID != wantID || created != wantCreated:
				t.Errorf("CreateRun %s = %s, created=%v; want %s, created=%v", r.RunID, got.RunID, created, wantID, wantCreated)
			}
			return nil
		}
	}
	mark := func(id string) func() error { return func() error { return db.MarkPublished(ctx, id, 1) } }
	boom := errors.New("boom")
	writeThenFail := func() error {
		return db.inGroup(ctx, func(tx *sql.Tx) error {
			if _, err := tx.Exec(`UPDATE runs SET published_attempt = 1 WHERE run_id = ?`, r2.RunID); err != nil {
				return err
			}
			return boom
		})
	}
	ops := []struct {
		name    string
		run     func() error
		wantErr error
	}{
		{"create r1", create(ctx, r1, r1.RunID, true, ""), nil},
		{"create r2", create(ctx, r2, r2.RunID, true, ""), nil},
		{"create r3 with the key of r2", create(ctx, newRun(3, keyed("k2")), r2.RunID, false, ""), nil},
		{"mark r1", mark(r1.RunID), nil},
		{"create r1 again", create(ctx, newRun(1, func(r *jobs.Run) { r.Cluster = "again" }), "", false, jobs.CodeAlreadyExists), nil},
		{"create a run id taken before", create(ctx, newRun(0), "", false, jobs.CodeAlreadyExists), nil},
		{"mark a missing run", mark("nope"), jobs.ErrNotFound},
		{"write, then fail", writeThenFail, boom},
		{"create with a context canceled while queued", create(canceled, newRun(4), "", false, ""), context.Canceled},
		{"create r5", create(ctx, r5, r5.RunID, true, ""), nil},
		{"mark r5", mark(r5.RunID), nil},
	}

	// Hold the writer's one connection: the committer takes a first write
	// and waits for the connection while the others queue, in order, to
	// make one batch.
	hold, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback() // on failure: Close waits for the committer
	errs := make([]chan error, len(ops))
	first := make(chan error, 1)
	go func() { first <- db.MarkPublished(ctx, taken.RunID, 1) }()
	waitUntil(t, "the committer waits for the connection", func() bool { return db.w.Stats().WaitCount > 0 })
	for i, op := range ops {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- op.run() }()
		waitUntil(t, op.name+" is queued", func() bool { return len(db.group.ops) == i+1 })
	}
	cancel()
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}

	if err := <-first; err != nil {
		t.Errorf("mark taken: %v", err)
	}
	for i, op := range ops {
		if err := <-errs[i]; !errors.Is(err, op.wantErr) {
			t.Errorf("%s: %v; want %v", op.name, err, op.wantErr)
		}
	}
	for _, r := range []*jobs.Run{taken, r1, r2, r5} {
		sameJSON(t, mustGet(t, db, r.RunID), r)
	}
	for _, id := range []string{newRun(3).RunID, newRun(4).RunID} {
		if _, err := db.GetRun(ctx, id); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("GetRun %s = %v; want ErrNotFound", id, err)
		}
	}
	if un, err := db.Unpublished(ctx); err != nil || !slices.Equal(ids(un), []string{r2.RunID}) {
		t.Errorf("Unpublished = %v, %v; want [%s]", ids(un), err, r2.RunID)
	}
}

// The hot writes run statements prepared once: past the first calls, they
// make SQLite parse no SQL but BEGIN and COMMIT. SQLite asks the authorizer
// about a statement only while preparing it, so its calls count parses.
func TestHotWritesParseNoSQL(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	var parsed atomic.Int64
	conn, err := db.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Raw(func(dc any) error {
		return dc.(sqlite.AuthorizerRegisterer).RegisterAuthorizer(
			func(action sqlite.AuthorizerActionCode, _, _, _, _ string) sqlite.AuthorizerReturnCode {
				if action != sqlite.AuthTransaction {
					parsed.Add(1)
				}
				return sqlite.AuthorizerOK
			})
	})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}

	round := func(i int) {
		t.Helper()
		r := newRun(2*i, func(r *jobs.Run) { r.IdempotencyKey = r.RunID })
		mustCreate(t, db, r)
		mustCreate(t, db, newRun(2*i+1))
		if err := db.MarkPublished(ctx, r.RunID, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(r, 1, 1, jobs.StatusRunning)}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateRun(ctx, r.RunID, func(r *jobs.Run) bool { r.Cluster = "other"; return true }); err != nil {
			t.Fatal(err)
		}
	}
	// Setting the authorizer expired the prepared statements: the first
	// round prepares them again.
	round(0)
	if parsed.Load() == 0 {
		t.Fatal("the authorizer saw nothing prepared")
	}
	parsed.Store(0)
	for i := 1; i <= 5; i++ {
		round(i)
	}
	if n := parsed.Load(); n != 0 {
		t.Errorf("the authorizer was called %d times: the hot writes parse SQL", n)
	}
}

// TestGroupCommitGathersUnderLoad: writes that come together share
// commits, while a write to a quiet store is committed alone, without
// waiting for company.
func TestGroupCommitGathersUnderLoad(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	// As under load: writers that each write, pause briefly, write again,
	// so that few of them wait at any moment.
	const writers, each = 16, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, _, err := db.CreateRun(ctx, newRun(1000+w*each+i)); err != nil {
					t.Error(err)
				}
				time.Sleep(200 * time.Microsecond)
			}
		})
	}
	wg.Wait()
	c := db.group.commits.Load()
	t.Logf("%d writes, %d commits", writers*each, c)
	if c > writers*each/5 {
		t.Fatalf("%d writes from %d busy writers took %d commits", writers*each, writers, c)
	}
	before := db.group.commits.Load()
	for i := range 3 {
		time.Sleep(3 * groupGather)
		mustCreate(t, db, newRun(2000+i))
	}
	if c := db.group.commits.Load() - before; c != 3 {
		t.Fatalf("3 writes to a quiet store took %d commits", c)
	}
}

// TestWritesAroundCloseAreAnswered: writes racing Close, and writes after
// it, each return, committed or refused with errClosed. A write after
// Close could be put on the queue after the committer's last look, and
// wait forever for an answer.
func TestWritesAroundCloseAreAnswered(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	mustCreate(t, db, newRun(0))
	const racing, after = 200, 100
	start := make(chan struct{})
	results := make(chan error, racing)
	late := make(chan error, after)
	var closed sync.WaitGroup
	closed.Add(1)
	go func() {
		defer closed.Done()
		<-start
		db.Close()
	}()
	for i := range racing {
		go func() {
			<-start
			if i%2 == 0 {
				_, _, err := db.CreateRun(ctx, newRun(i+1))
				results <- err
				return
			}
			results <- db.MarkPublished(ctx, newRun(0).RunID, 1)
		}()
	}
	close(start)
	go func() {
		closed.Wait()
		for range after {
			late <- db.MarkPublished(ctx, newRun(0).RunID, 1)
		}
	}()
	hang := time.After(10 * time.Second)
	for i := range racing + after {
		select {
		case err := <-results:
			if err != nil && !errors.Is(err, errClosed) {
				t.Errorf("write racing Close: %v, want nil or errClosed", err)
			}
		case err := <-late:
			if !errors.Is(err, errClosed) {
				t.Errorf("write after Close: %v, want errClosed", err)
			}
		case <-hang:
			t.Fatalf("%d of %d writes around Close still waiting after 10s", racing+after-i, racing+after)
		}
	}
}
