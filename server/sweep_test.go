package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
)

// TestSweepOfAStaleListingPublishesNothing: the sweep works from a listing
// of the runs not yet ended, taken before it looks at each. A run that ended
// in between must not have its end published a second time (followers and
// benchmarks count ends; pipelines advance on them).
func TestSweepOfAStaleListingPublishesNothing(t *testing.T) {
	ctx := context.Background()
	nc, q, db := testStack(t)
	s := New(db, q)

	now := time.Now().UTC()
	createQueued(t, db, "r1")
	listed, err := db.GetRun(ctx, "r1") // what the sweep's listing saw: QUEUED
	if err != nil {
		t.Fatal(err)
	}
	zero := 0
	if _, err := db.ApplyEvents(ctx, []jobs.Event{
		{RunID: "r1", Attempt: 1, Seq: 1, Status: jobs.StatusRunning, Worker: "w1", Time: now},
		{RunID: "r1", Attempt: 1, Seq: 2, Status: jobs.StatusSucceeded, Worker: "w1", Time: now, ExitCode: &zero},
	}); err != nil {
		t.Fatal(err)
	}

	sub, err := nc.SubscribeSync(queue.EventSubject("r1"))
	if err != nil {
		t.Fatal(err)
	}
	// No live worker: the stale QUEUED run would get a placement reason.
	if err := s.sweepRun(ctx, listed, nil, map[string]bool{}, newSweepState(), now); err != nil {
		t.Fatal(err)
	}
	<-q.JetStream().PublishAsyncComplete()
	if msg, err := sub.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("the sweep published %s for a run that had ended", msg.Data)
	}
	if got, _ := db.GetRun(ctx, "r1"); got.Status != jobs.StatusSucceeded || got.StatusReason != "" {
		t.Fatalf("the sweep changed an ended run: %s %q", got.Status, got.StatusReason)
	}
}

// TestSweepAndAWorkersEndAnnouncedInOrder: a worker's end, applied while
// the sweep stores a new placement reason, is announced after the sweep's
// QUEUED, once: the report waits for the sweep's announcement to be sent
// (lockOrder). The run's last event tells its end (queue.RunEnded).
func TestSweepAndAWorkersEndAnnouncedInOrder(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	waits := make(chan struct{}, 1)
	s := New(db, q, func(c *config) {
		c.orderWaits = func() {
			select {
			case waits <- struct{}{}:
			default:
			}
		}
	})

	now := time.Now().UTC()
	createQueued(t, db, "r1")
	listed, err := db.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	zero := 0
	applied := make(chan struct{})
	s.sweepStored = func() {
		go func() {
			defer close(applied)
			s.applyBatch(ctx, &queue.EventBatch{Events: []jobs.Event{
				{RunID: "r1", Attempt: 1, Seq: 1, Status: jobs.StatusRunning, Worker: "w1", Time: now},
				{RunID: "r1", Attempt: 1, Seq: 2, Status: jobs.StatusSucceeded, Worker: "w1", Time: now, ExitCode: &zero},
			}})
		}()
		select { // applied, or waiting for the sweep's announcement
		case <-applied:
		case <-waits:
		}
	}
	// No live worker: the QUEUED run gets a placement reason.
	if err := s.sweepRun(ctx, listed, nil, map[string]bool{}, newSweepState(), now); err != nil {
		t.Fatal(err)
	}
	<-applied
	<-q.JetStream().PublishAsyncComplete()
	if got, _ := db.GetRun(ctx, "r1"); got.Status != jobs.StatusSucceeded {
		t.Fatalf("run is %s", got.Status)
	}
	if ended, err := q.RunEnded(ctx, "r1"); err != nil || !ended {
		t.Fatalf("RunEnded = %v, %v: the run's last event is not its end", ended, err)
	}
	if got := announcedStatuses(t, q, "r1"); !slices.Equal(got, []jobs.Status{jobs.StatusQueued, jobs.StatusSucceeded}) {
		t.Errorf("announced %v, want [QUEUED SUCCEEDED]", got)
	}
}

// TestSweepGoesOnPastAFailedStep: a step of the sweep that fails (here the
// pool release, refused by the store) keeps none of the later ones from
// running (a queued run past its deadline is failed), and the round's
// error names the step, returned and logged by the sweep loop; once the
// store takes the release again, the next round does it.
func TestSweepGoesOnPastAFailedStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, q, _ := testStack(t)
	path := filepath.Join(t.TempDir(), "gantry.db")
	db, err := storage.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var (
		mu   sync.Mutex
		now  = time.Now().UTC()
		logs syncBuffer
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := New(db, q, WithClock(clock), WithLogger(zerolog.New(&logs)), WithSweepInterval(10*time.Millisecond))
	td, _ := json.Marshal(bigTask(10))
	if _, _, err := db.SetPool(ctx, "p", 0, now); err != nil {
		t.Fatal(err)
	}
	waiting, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td, Pool: "p"})
	if err != nil {
		t.Fatal(err)
	}
	late, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td, ActiveDeadlineSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	// A slot frees (in the store alone, so that the sweep is the one to
	// release it), and the store refuses the release.
	if _, _, err := db.SetPool(ctx, "p", 1, now); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER refuse_release BEFORE INSERT ON pool_runs WHEN NEW.state = 3
		BEGIN SELECT RAISE(ABORT, 'test refuses the release'); END`); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute) // past the late run's deadline
	mu.Unlock()

	err = s.sweepOnce(ctx, newSweepState())
	if err == nil || !strings.Contains(err.Error(), "release pools: ") || !strings.Contains(err.Error(), "test refuses the release") {
		t.Fatalf("sweep: %v; want the release's error, named", err)
	}
	if r, err := db.GetRun(ctx, late.RunID); err != nil || r.Status != jobs.StatusFailed {
		t.Fatalf("the run past its deadline after the failed release: %+v, %v; want FAILED", r, err)
	}
	if r, err := db.GetRun(ctx, waiting.RunID); err != nil || !r.WaitingForSlot() {
		t.Fatalf("the run the refused release would have released: %+v, %v", r, err)
	}

	// The sweep loop logs the round's error, naming the step.
	sweepCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.sweep(sweepCtx) }()
	for !strings.Contains(logs.String(), `release pools: `) {
		select {
		case err := <-done:
			t.Fatalf("sweep loop ended: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	<-done
	if !strings.Contains(logs.String(), `"message":"sweep"`) || !strings.Contains(logs.String(), "test refuses the release") {
		t.Errorf("logs: %s", logs.String())
	}

	if _, err := raw.Exec(`DROP TRIGGER refuse_release`); err != nil {
		t.Fatal(err)
	}
	if err := s.sweepOnce(ctx, newSweepState()); err != nil {
		t.Fatalf("sweep with the store taking the release: %v", err)
	}
	if r, err := db.GetRun(ctx, waiting.RunID); err != nil || r.PoolState() != jobs.PoolHolding {
		t.Fatalf("the waiting run after a release the store took: %+v, %v; want it holding a slot", r, err)
	}
}
