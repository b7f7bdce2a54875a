package server

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
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

// TestSweepRepublishesARunThatEndedMeanwhile: the worker's end, applied
// and published between the sweep's commit of a new placement reason and
// its publish, is published again after the sweep's QUEUED, so that the
// run's last event tells its end (queue.RunEnded).
func TestSweepRepublishesARunThatEndedMeanwhile(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	s := New(db, q)

	now := time.Now().UTC()
	createQueued(t, db, "r1")
	listed, err := db.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	zero := 0
	s.sweepStored = func() {
		changed, err := db.ApplyEvents(ctx, []jobs.Event{
			{RunID: "r1", Attempt: 1, Seq: 1, Status: jobs.StatusRunning, Worker: "w1", Time: now},
			{RunID: "r1", Attempt: 1, Seq: 2, Status: jobs.StatusSucceeded, Worker: "w1", Time: now, ExitCode: &zero},
		})
		if err != nil || len(changed) != 1 {
			t.Errorf("apply: %v %d", err, len(changed))
			return
		}
		s.publishStatus(changed[0].Run)
	}
	// No live worker: the QUEUED run gets a placement reason.
	if err := s.sweepRun(ctx, listed, nil, map[string]bool{}, newSweepState(), now); err != nil {
		t.Fatal(err)
	}
	<-q.JetStream().PublishAsyncComplete()
	if ended, err := q.RunEnded(ctx, "r1"); err != nil || !ended {
		t.Fatalf("RunEnded = %v, %v: the run's last event is not its end", ended, err)
	}
}
