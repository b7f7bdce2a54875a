package storage

import (
	"context"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// publishedAttempt is run id's published_attempt column.
func publishedAttempt(t *testing.T, db *DB, id string) int {
	t.Helper()
	var n int
	if err := db.r.QueryRowContext(context.Background(), `SELECT published_attempt FROM runs WHERE run_id = ?`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestApplyEventsMarksPublished: the update that folds a worker's events
// into a run marks the latest attempt they changed published (a worker ran
// it: its job reached the queue), in the same statement. An attempt that
// ended and was retried stays unpublished for the retry; an event of an
// attempt the run does not have marks nothing; an event that changes
// nothing writes nothing.
func TestApplyEventsMarksPublished(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	a := newRun(1, func(r *jobs.Run) { r.Spec.RetryStrategy = &jobs.RetryStrategy{Attempts: 2} })
	b := newRun(2)
	mustCreate(t, db, a)
	mustCreate(t, db, b)

	if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(a, 1, 1, jobs.StatusStarting), ev(b, 5, 1, jobs.StatusStarting)}); err != nil {
		t.Fatal(err)
	}
	if got := publishedAttempt(t, db, a.RunID); got != 1 {
		t.Errorf("run a after its STARTING: published_attempt %d; want 1", got)
	}
	if got := publishedAttempt(t, db, b.RunID); got != 0 {
		t.Errorf("run b after an event of an attempt it does not have: published_attempt %d; want 0", got)
	}
	if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(a, 1, 2, jobs.StatusFailed)}); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, db, a.RunID); r.Status != jobs.StatusQueued || len(r.Attempts) != 2 {
		t.Fatalf("run a after its failure: %s with %d attempts; want a retry QUEUED", r.Status, len(r.Attempts))
	}
	if got := publishedAttempt(t, db, a.RunID); got != 1 {
		t.Errorf("run a retried: published_attempt %d; want 1", got)
	}
	got, err := db.Unpublished(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{a.RunID, b.RunID}; len(got) != 2 || got[0].RunID != want[0] || got[1].RunID != want[1] {
		t.Errorf("Unpublished = %v; want %v (a's retry and b)", ids(got), want)
	}
}

// TestMarkPublishedRuns: the server's held marks are written in one call;
// a run deleted meanwhile is skipped, not an error.
func TestMarkPublishedRuns(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	a, b := newRun(1), newRun(2)
	mustCreate(t, db, a)
	mustCreate(t, db, b)
	if err := db.MarkPublishedRuns(ctx, []string{a.RunID, "01GONE", b.RunID}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.RunID, b.RunID} {
		if got := publishedAttempt(t, db, id); got != 1 {
			t.Errorf("run %s: published_attempt %d; want 1", id, got)
		}
	}
	if err := db.MarkPublishedRuns(ctx, nil); err != nil {
		t.Fatal(err)
	}
}
