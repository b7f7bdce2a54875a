package server

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// unpublishedIDs are the ids of the runs the store holds unpublished.
func unpublishedIDs(t *testing.T, s *Server) []string {
	t.Helper()
	runs, err := s.db.Unpublished(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range runs {
		out = append(out, r.RunID)
	}
	return out
}

// TestHeldMarkWrittenWhileRunning: a new run that no worker takes has its
// published mark written within markHold or so of its QUEUED's storing,
// while the server runs; until then it counts as being confirmed, so the
// sweep's republish leaves it alone, and afterwards it does not.
func TestHeldMarkWrittenWhileRunning(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var run jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &run)
	s := e.srv
	for deadline := time.Now().Add(markHold + 10*time.Second); slices.Contains(unpublishedIDs(t, s), run.RunID); {
		if !s.beingConfirmed(run.RunID) {
			t.Fatalf("run %s is neither marked published nor being confirmed: the sweep would publish it again", run.RunID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not marked published within %v", run.RunID, markHold+10*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for deadline := time.Now().Add(5 * time.Second); s.beingConfirmed(run.RunID); {
		if time.Now().After(deadline) {
			t.Fatalf("run %s still being confirmed 5s after its mark was written", run.RunID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHeldMarkDroppedByEvents: a mark held for a run whose events are
// applied before it is written is dropped, the run no longer being
// confirmed; the application's update marked the run published, and a
// flush writes nothing for it. A mark of a run whose events were applied
// before it was held is written all the same (harmless: the mark is a
// MAX).
func TestHeldMarkDroppedByEvents(t *testing.T) {
	e := startAPI(t)
	s := e.srv
	ctx := context.Background()
	now := time.Now().UTC()
	mk := func(id string) *jobs.Run {
		r := &jobs.Run{RunID: id, Status: jobs.StatusQueued, TaskDefinition: "hello:1", Cluster: "default",
			Priority: jobs.PriorityNormal, CreatedAt: now,
			Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: now}}}
		if _, _, err := s.db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := mk("01heldmarka"), mk("01heldmarkb")
	for _, id := range []string{a.RunID, b.RunID} {
		s.confirming.Store(id, struct{}{})
		s.holdMark(id)
	}
	// As applyBatch does for the runs ApplyEvents changed.
	changed, err := s.db.ApplyEvents(ctx, []jobs.Event{{RunID: a.RunID, Attempt: 1, Seq: 1, Status: jobs.StatusStarting,
		Source: jobs.SourceWorker, Worker: "w1", Time: now}})
	if err != nil || len(changed) != 1 {
		t.Fatalf("ApplyEvents: %d changed, %v", len(changed), err)
	}
	s.dropMark(a.RunID)
	if s.beingConfirmed(a.RunID) {
		t.Errorf("run a: still being confirmed after its events dropped its mark")
	}
	// b's mark is held, or written by the server's own flush meanwhile.
	s.marks.mu.Lock()
	_, heldA := s.marks.ids[a.RunID]
	s.marks.mu.Unlock()
	if heldA {
		t.Fatal("run a: its mark is held after the drop")
	}
	if got := unpublishedIDs(t, s); slices.Contains(got, a.RunID) {
		t.Errorf("unpublished before the flush: %v; a was marked by its events", got)
	}
	s.flushMarks(ctx)
	if got := unpublishedIDs(t, s); len(got) != 0 {
		t.Errorf("unpublished after the flush: %v", got)
	}
	if s.beingConfirmed(b.RunID) {
		t.Errorf("run b: still being confirmed after its mark was written")
	}
}
