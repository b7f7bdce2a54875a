package storage

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func runIDs(runs []jobs.Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.RunID)
	}
	return out
}

// TestSweepLookups: the worker and deadline columns follow the runs
// through every write (create, events, UpdateRun, RequeueRun) and the
// sweep's lookups find by them.
func TestSweepLookups(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	deadline := func(d time.Duration) func(*jobs.Run) {
		return func(r *jobs.Run) { at := t0.Add(d); r.Spec.ActiveDeadlineSeconds, r.Spec.Deadline = 60, &at }
	}
	queued, expired, onW1, onW2 := newRun(1, deadline(time.Hour)), newRun(2, deadline(time.Minute)), newRun(3), newRun(4)
	for _, r := range []*jobs.Run{queued, expired, onW1, onW2} {
		mustCreate(t, db, r)
	}
	if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(onW1, 1, 1, jobs.StatusRunning),
		ev(onW2, 1, 1, jobs.StatusStarting, func(e *jobs.Event) { e.Worker = "w2" })}); err != nil {
		t.Fatal(err)
	}

	for w, want := range map[string][]string{"w1": {onW1.RunID}, "w2": {onW2.RunID}, "w3": nil} {
		on, err := db.RunsOfWorker(ctx, w)
		if err != nil || !slices.Equal(runIDs(on), want) {
			t.Fatalf("RunsOfWorker(%s) = %v, %v; want %v", w, runIDs(on), err, want)
		}
	}
	past, err := db.QueuedPastDeadline(ctx, t0.Add(30*time.Minute), 10)
	if err != nil || !slices.Equal(runIDs(past), []string{expired.RunID}) {
		t.Fatalf("QueuedPastDeadline = %v, %v; want [%s]", runIDs(past), err, expired.RunID)
	}
	un, err := db.Unpublished(ctx)
	if err != nil || !slices.Equal(runIDs(un), []string{queued.RunID, expired.RunID}) {
		t.Fatalf("Unpublished = %v, %v", runIDs(un), err)
	}

	// w2's run ends: w2 has no run left.
	if _, err := db.UpdateRun(ctx, onW2.RunID, func(r *jobs.Run) bool { r.Status = jobs.StatusFailed; return true }); err != nil {
		t.Fatal(err)
	}
	if on, _ := db.RunsOfWorker(ctx, "w2"); len(on) != 0 {
		t.Fatalf("RunsOfWorker(w2) after its run ended = %v", runIDs(on))
	}
	if on, _ := db.RunsOfWorker(ctx, "w1"); !slices.Equal(runIDs(on), []string{onW1.RunID}) {
		t.Fatalf("RunsOfWorker(w1) after w2's run ended = %v", runIDs(on))
	}

	// A published run queued again by RequeueRun counts as unpublished.
	if err := db.MarkPublished(ctx, queued.RunID, 1); err != nil {
		t.Fatal(err)
	}
	r, changed, err := db.RequeueRun(ctx, queued.RunID, func(r *jobs.Run) bool {
		r.Attempts = append(r.Attempts, jobs.Attempt{Attempt: 2, Status: jobs.StatusQueued, CreatedAt: t0})
		return true
	})
	if err != nil || !changed || len(r.Attempts) != 2 {
		t.Fatalf("RequeueRun = %v, %v", changed, err)
	}
	un, _ = db.Unpublished(ctx)
	if !slices.Contains(runIDs(un), queued.RunID) {
		t.Fatalf("requeued run not unpublished: %v", runIDs(un))
	}
	if _, changed, err := db.RequeueRun(ctx, queued.RunID, func(*jobs.Run) bool { return false }); err != nil || changed {
		t.Fatalf("RequeueRun that changes nothing = %v, %v", changed, err)
	}
}

// TestFarDeadlineIsNotPast: a deadline past 2262 does not fit in unix
// nanoseconds; it wrapped into the past, and the sweep failed the run as
// past its deadline the moment it was stored.
func TestFarDeadlineIsNotPast(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newRun(1, func(r *jobs.Run) { r.Spec.ActiveDeadlineSeconds, r.Spec.Deadline = 60, &far })
	mustCreate(t, db, r)
	if past, err := db.QueuedPastDeadline(ctx, t0, 10); err != nil || len(past) != 0 {
		t.Fatalf("QueuedPastDeadline(%s) = %v, %v; the deadline is %s", t0, runIDs(past), err, far)
	}
	// It still passes, once, at the end of what the column can say.
	past, err := db.QueuedPastDeadline(ctx, time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC), 10)
	if err != nil || !slices.Equal(runIDs(past), []string{r.RunID}) {
		t.Fatalf("QueuedPastDeadline(2263) = %v, %v; want [%s]", runIDs(past), err, r.RunID)
	}
}

// TestMigration5FillsSweepColumns: runs stored before migration 0005 get
// their worker and deadline columns from their documents.
func TestMigration5FillsSweepColumns(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	at := t0.Add(90 * time.Second)
	running := newRun(1, func(r *jobs.Run) {
		r.Status, r.Attempts[0].Status, r.Attempts[0].Worker = jobs.StatusRunning, jobs.StatusRunning, "w7"
	})
	queued := newRun(2, func(r *jobs.Run) { r.Spec.Deadline = &at })
	mustCreate(t, db, running)
	mustCreate(t, db, queued)
	// Undo migration 0005, then apply it again over the stored runs.
	for _, stmt := range []string{
		`DROP INDEX runs_worker`, `DROP INDEX runs_queued_deadline`, `DROP INDEX runs_unpublished`,
		`ALTER TABLE runs DROP COLUMN worker`, `ALTER TABLE runs DROP COLUMN deadline`,
		`DELETE FROM schema_migrations WHERE version = 5`,
	} {
		if _, err := db.w.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := migrate(ctx, db.w); err != nil {
		t.Fatal(err)
	}
	if on, err := db.RunsOfWorker(ctx, "w7"); err != nil || !slices.Equal(runIDs(on), []string{running.RunID}) {
		t.Fatalf("RunsOfWorker(w7) = %v, %v; want [%s]", runIDs(on), err, running.RunID)
	}
	for _, tt := range []struct {
		now  time.Time
		want []string
	}{{at.Add(-time.Millisecond), nil}, {at, []string{queued.RunID}}} {
		past, err := db.QueuedPastDeadline(ctx, tt.now, 10)
		if err != nil || !slices.Equal(runIDs(past), tt.want) {
			t.Fatalf("QueuedPastDeadline(%s) = %v, %v; want %v", tt.now, runIDs(past), err, tt.want)
		}
	}
}
