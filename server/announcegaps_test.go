package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/storage"
	"github.com/rs/zerolog"
)

// rawStore opens a store and a second connection to its file, through
// which a test breaks what the store's queries read or write.
func rawStore(t *testing.T) (*storage.DB, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gantry.db")
	db, err := storage.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return db, raw
}

func unpublished(t *testing.T, db *storage.DB, id string) bool {
	t.Helper()
	runs, err := db.Unpublished(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(runs, func(r jobs.Run) bool { return r.RunID == id })
}

// A sweep's republish that comes between a new run's commit and its
// submission's send of its QUEUED leaves the run to confirmQueued:
// marked by the sweep, a run whose QUEUED a crash then lost would be
// checked by no start. Here the QUEUED is lost and the server "killed"
// (abandoned): the next start finds the run unmarked and announces it.
func TestNewRunLeftUnmarkedBySweepBeforeItsQUEUEDIsSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, q, db := testStack(t)
	var s *Server
	s = New(db, q, withLostAnnouncements(func(string) bool { return true }), func(c *config) {
		c.runStored = func(string) {
			if err := s.republish(ctx); err != nil {
				t.Errorf("republish: %v", err)
			}
		}
	})
	t.Cleanup(s.bg.Wait) // confirmQueued gives up on the lost QUEUED after announceWait
	td, _ := json.Marshal(bigTask(10))
	r, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td})
	if err != nil {
		t.Fatal(err)
	}
	if !unpublished(t, db, r.RunID) {
		t.Fatal("the sweep's republish marked the new run before its QUEUED was confirmed")
	}

	next := New(db, q)
	checked, err := next.resyncPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.republishAtStart(ctx, checked); err != nil {
		t.Fatal(err)
	}
	next.settleAnnouncements(ctx)
	if got := announcedStatuses(t, q, r.RunID); !slices.Equal(got, []jobs.Status{jobs.StatusQueued}) {
		t.Errorf("announced %v, want [QUEUED]", got)
	}
}

// A new run whose QUEUED failed, and whose outbox row the store refused
// then, is not marked by the sweep's republish until it has its row: then
// it is marked, and its QUEUED checked and announced while the server
// runs.
func TestUnrecordedFailedQUEUEDCheckedBeforeTheSweepMarksIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, q, _ := testStack(t)
	db, raw := rawStore(t)
	var unsent atomic.Bool
	unsent.Store(true)
	s := New(db, q, func(c *config) { c.unsentAnnouncement = func(string) bool { return unsent.Load() } })
	if _, err := raw.Exec(`CREATE TRIGGER refuse_outbox BEFORE INSERT ON announce_outbox
		BEGIN SELECT RAISE(ABORT, 'outbox refused'); END`); err != nil {
		t.Fatal(err)
	}
	td, _ := json.Marshal(bigTask(10))
	r, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td})
	if err != nil {
		t.Fatal(err)
	}
	s.bg.Wait() // confirmQueued: the QUEUED not sent, its row refused
	if err := s.republish(ctx); err != nil {
		t.Fatal(err)
	}
	if !unpublished(t, db, r.RunID) {
		t.Fatal("the sweep marked a run whose QUEUED is neither stored nor in the outbox")
	}

	if _, err := raw.Exec(`DROP TRIGGER refuse_outbox`); err != nil {
		t.Fatal(err)
	}
	unsent.Store(false)
	if err := s.republish(ctx); err != nil {
		t.Fatal(err)
	}
	if unpublished(t, db, r.RunID) {
		t.Fatal("the sweep left the run unmarked once its row was written")
	}
	for range 2 { // the check's publish, then its check once stored
		s.recheckAnnouncements(ctx)
		s.settleAnnouncements(ctx)
	}
	s.clearAnnounced(ctx)
	if got := announcedStatuses(t, q, r.RunID); !slices.Equal(got, []jobs.Status{jobs.StatusQueued}) {
		t.Errorf("announced %v, want [QUEUED]", got)
	}
	if rows, err := db.PendingAnnouncements(ctx); err != nil || len(rows) != 0 {
		t.Errorf("outbox: %v, %v; want it empty", rows, err)
	}
}

// announceCheckMax runs whose checks always fail (their documents
// unreadable) starve none of the others: they wait, each longer after
// each failure, and the next tick checks the run behind them.
func TestFailingChecksStarveNoOtherRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, q, _ := testStack(t)
	db, raw := rawStore(t)
	s := New(db, q)
	var bad []string
	for i := range announceCheckMax {
		bad = append(bad, fmt.Sprintf("bad-%03d", i))
	}
	createQueued(t, db, append(bad, "good")...)
	if _, err := raw.Exec(`UPDATE runs SET doc = x'00' WHERE run_id LIKE 'bad-%'`); err != nil {
		t.Fatal(err)
	}
	for _, id := range append(bad, "good") {
		s.ann.checkLater(id, nil)
	}
	s.recheckAnnouncements(ctx)
	s.recheckAnnouncements(ctx)
	s.settleAnnouncements(ctx)
	if got := announcedStatuses(t, q, "good"); !slices.Equal(got, []jobs.Status{jobs.StatusQueued}) {
		t.Errorf("the run behind %d failing checks: announced %v, want [QUEUED]", len(bad), got)
	}
	for _, id := range bad {
		if c := s.ann.recheck[id]; c == nil || c.fails != 1 {
			t.Fatalf("run %s: %+v, want checked again after one failure", id, c)
		}
	}
}

// While NATS does not answer, a tick stops at its first check that cannot
// read the last announcement (each would wait for its timeout), says so
// once, and keeps every run for the next tick.
func TestChecksStopAtTheFirstUnreadAnnouncement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc, q, db := testStack(t)
	var logs syncBuffer
	s := New(db, q, WithLogger(zerolog.New(&logs)))
	createQueued(t, db, "r1", "r2", "r3")
	for _, id := range []string{"r1", "r2", "r3"} {
		s.ann.checkLater(id, []int64{1})
	}
	nc.Close()
	s.recheckAnnouncements(ctx)
	s.recheckAnnouncements(ctx)
	if n := strings.Count(logs.String(), `"level":"warn"`); n != 1 {
		t.Errorf("%d warnings, want one:\n%s", n, logs.String())
	}
	if len(s.ann.recheck) != 3 {
		t.Fatalf("runs kept to check: %v", s.ann.recheck)
	}
	for id, c := range s.ann.recheck {
		if c.fails != 0 || len(c.rows) != 1 {
			t.Errorf("run %s: %+v, want its row and no failure counted", id, c)
		}
	}
}
