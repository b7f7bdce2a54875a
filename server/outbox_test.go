package server

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// settledFuture is the future of a publish whose outcome is known: as
// JetStream's, each channel gives it once.
type settledFuture struct {
	ok  chan *jetstream.PubAck
	err chan error
}

func storedFuture() settledFuture {
	f := settledFuture{ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	f.ok <- &jetstream.PubAck{}
	return f
}

func failedFuture(err error) settledFuture {
	f := settledFuture{ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	f.err <- err
	return f
}

func (f settledFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f settledFuture) Err() <-chan error            { return f.err }
func (f settledFuture) Msg() *nats.Msg               { return nil }

// An announcement stored counts as stored however late it is looked at
// (settleAnnouncements reaches the ones behind a slow publish after
// their deadline): taken for a failure, its run would be checked again
// while it may be changing. A failure counts as one. A wait that ctx
// ends keeps only the publishes not seen stored, whose outcome is still
// to come (a future tells it once).
func TestAwaitStoredOutcomeBeforeDeadline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	wait := time.NewTimer(0)
	defer wait.Stop()
	long := time.Now().Add(-time.Hour) // its deadline long passed
	for i := range 200 {               // a select between the outcome and the deadline picks at random
		p := &tracked{run: "r", futures: []jetstream.PubAckFuture{storedFuture(), storedFuture()}, sent: long}
		if err := awaitStored(ctx, wait, p); err != nil {
			t.Fatalf("try %d: stored announcements, late: %v", i, err)
		}
		if len(p.futures) != 0 {
			t.Fatalf("try %d: %d futures left", i, len(p.futures))
		}
		failed := errors.New("refused")
		p = &tracked{run: "r", futures: []jetstream.PubAckFuture{failedFuture(failed)}, sent: long}
		if err := awaitStored(ctx, wait, p); !errors.Is(err, failed) {
			t.Fatalf("try %d: failed announcement, late: %v, want %v", i, err, failed)
		}
	}

	ended, cancel := context.WithCancel(ctx)
	cancel()
	onItsWay := lostFuture{}
	p := &tracked{run: "r", futures: []jetstream.PubAckFuture{storedFuture(), onItsWay}, sent: time.Now()}
	if err := awaitStored(ended, wait, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait ended by ctx: %v", err)
	}
	if len(p.futures) != 1 || p.futures[0] != jetstream.PubAckFuture(onItsWay) {
		t.Fatalf("left on its way %v, want only the publish not stored", p.futures)
	}
}

// At start, nothing but the start changes runs until its announcements
// are stored: its checks' publishes cannot be overtaken, and once stored
// they clear their rows, leaving no check for while reports are applied
// (one then could read a run whose next change is on its way, and
// announce that change twice). Here: a stop whose announcement a crash
// lost (resyncPending) and a new run whose QUEUED it lost (republish's
// ensureAnnounced).
func TestStartChecksLeaveNothingToCheckOnceStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, q, db := testStack(t)
	createQueued(t, db, "stopped", "new")
	if _, _, err := db.UpdateRunAnnounced(ctx, "stopped", func(r *jobs.Run) (bool, bool) {
		return r.Cancel(time.Now().UTC(), "Stopped by user"), true
	}); err != nil {
		t.Fatal(err)
	}

	s := New(db, q)
	checked, err := s.resyncPending(ctx)
	if err != nil || !checked["stopped"] {
		t.Fatalf("resyncPending: %v, %v", checked, err)
	}
	if err := s.republishAtStart(ctx, checked); err != nil {
		t.Fatal(err)
	}
	s.settleAnnouncements(ctx)
	if len(s.ann.recheck) != 0 {
		t.Errorf("runs to check again while reports are applied: %v", s.ann.recheck)
	}
	s.clearAnnounced(ctx)
	if rows, err := db.PendingAnnouncements(ctx); err != nil || len(rows) != 0 {
		t.Errorf("outbox after the start: %v, %v; want it empty", rows, err)
	}
	for id, want := range map[string][]jobs.Status{"stopped": {jobs.StatusCanceled}, "new": {jobs.StatusQueued}} {
		if got := announcedStatuses(t, q, id); !slices.Equal(got, want) {
			t.Errorf("run %s: announced %v, want %v", id, got, want)
		}
	}
}

// A check while the server runs (of an announcement that failed) reads
// the run's last announcement before the run: a change stored and
// announced between the two reads (here a stop) is then the run it
// reads, and what it publishes. Read the other way round, the check
// would publish the run's status from before the stop after the stop's
// CANCELED. That change's CANCELED is announced again, as the check
// cannot tell a lost announcement from one made in between.
func TestCheckNeverAnnouncesAnOlderStatusAfterANewer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, q, db := testStack(t)
	var s *Server
	stopped := false
	s = New(db, q, func(c *config) {
		c.betweenCheckReads = func(id string) {
			if stopped {
				return
			}
			stopped = true
			if _, err := s.Stop(ctx, id, ""); err != nil {
				t.Errorf("stop: %v", err)
			}
			waitAnnounced(t, q, id, jobs.StatusCanceled)
		}
	})
	createQueued(t, db, "r1")
	r, err := db.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := <-s.send(r).Ok(); !ok {
		t.Fatal("QUEUED not stored")
	}
	row, err := db.AddAnnouncement(ctx, "r1") // as for an announcement that failed
	if err != nil {
		t.Fatal(err)
	}

	s.checkAnnounced(ctx, "r1", []int64{row}, true)
	if !stopped {
		t.Fatal("the check did not read the run")
	}
	// The check's publish stored, its run checked again; then all clear.
	for range 2 {
		s.settleAnnouncements(ctx)
		s.recheckAnnouncements(ctx)
	}
	s.settleAnnouncements(ctx)
	s.clearAnnounced(ctx)
	if len(s.ann.recheck) != 0 || len(s.ann.pending) != 0 {
		t.Errorf("left to check: %v, on their way: %d", s.ann.recheck, len(s.ann.pending))
	}
	if rows, err := db.PendingAnnouncements(ctx); err != nil || len(rows) != 0 {
		t.Errorf("outbox: %v, %v; want it empty", rows, err)
	}
	got := announcedStatuses(t, q, "r1")
	end := slices.IndexFunc(got, jobs.Status.Terminal)
	if end < 0 || slices.ContainsFunc(got[end:], func(st jobs.Status) bool { return !st.Terminal() }) {
		t.Errorf("announced %v: want nothing after the end", got)
	}
	if got[len(got)-1] != jobs.StatusCanceled {
		t.Errorf("announced %v: want CANCELED last", got)
	}
}
