package storage

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestAdoptJobsStream: the first stream adopted is recorded without
// touching a run (its jobs may well be in it); the same one again changes
// nothing; another one, or an empty one while none was recorded, makes the
// QUEUED runs marked published unpublished again, and only them: not the
// runs waiting for others or for a pool's slot, not a retry whose job was
// never published, not a run a worker holds or one that ended. The mark
// outlives a reopen, as it must outlive a restart.
func TestAdoptJobsStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openDB(t)
	if _, created, err := db.SetPool(ctx, "warehouse", 1, t0); err != nil || !created {
		t.Fatalf("SetPool: created=%v err=%v", created, err)
	}
	published, unpublished, running, ended := newRun(1), newRun(2), newRun(3), newRun(4)
	waiting := newRun(5, waitsFor(published.RunID))
	inPoolRun, poolHolder := newRun(7, inPool("warehouse", "")), newRun(6, inPool("warehouse", ""))
	retried := newRun(8, func(r *jobs.Run) {
		r.Attempts[0].Status = jobs.StatusFailed
		r.Attempts = append(r.Attempts, jobs.Attempt{Attempt: 2, Status: jobs.StatusQueued, CreatedAt: t0})
	})
	all := []*jobs.Run{published, unpublished, running, ended, waiting, poolHolder, inPoolRun, retried}
	for _, r := range all {
		mustCreate(t, db, r)
	}
	if rel, err := db.ReleasePool(ctx, "warehouse", t0, nil); err != nil || len(rel.Released) != 1 || rel.Released[0].RunID != poolHolder.RunID {
		t.Fatalf("release: %+v, %v", rel, err)
	}
	// Marked published as far as the store goes, even those whose jobs
	// are published only at their release: the adoption must leave them.
	for _, r := range []*jobs.Run{published, running, ended, waiting, poolHolder, inPoolRun} {
		if err := db.MarkPublished(ctx, r.RunID, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.MarkPublished(ctx, retried.RunID, 1); err != nil { // attempt 2 never was
		t.Fatal(err)
	}
	if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(running, 1, 1, jobs.StatusRunning),
		ev(ended, 1, 1, jobs.StatusSucceeded)}); err != nil {
		t.Fatal(err)
	}
	unpublishedIDs := func() []string {
		t.Helper()
		un, err := db.Unpublished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ids(un)
	}
	before := unpublishedIDs()
	if want := []string{unpublished.RunID, retried.RunID}; !slices.Equal(before, want) {
		t.Fatalf("unpublished before: %v, want %v", before, want)
	}

	for _, step := range []struct {
		what  string
		id    string
		empty bool
		want  int
	}{
		{"the first stream, with jobs", "s1", false, 0},
		{"the same stream, empty now", "s1", true, 0},
		{"a new stream", "s2", false, 2}, // published and poolHolder
		{"the new stream again", "s2", false, 0},
	} {
		n, err := db.AdoptJobsStream(ctx, step.id, step.empty)
		if err != nil || n != step.want {
			t.Fatalf("%s: requeued %d, %v; want %d", step.what, n, err, step.want)
		}
		if got, err := db.JobsStream(ctx); err != nil || got != step.id {
			t.Fatalf("%s: mark %q, %v", step.what, got, err)
		}
	}
	want := []string{published.RunID, unpublished.RunID, poolHolder.RunID, retried.RunID}
	if got := unpublishedIDs(); !slices.Equal(got, want) {
		t.Fatalf("unpublished after a new stream: %v, want %v", got, want)
	}
	for _, r := range all {
		got := mustGet(t, db, r.RunID)
		if got.Status != r.Status && r != running && r != ended {
			t.Errorf("run %s: %s, want %s: only its published mark may change", r.RunID, got.Status, r.Status)
		}
	}

	// The mark outlives a reopen.
	db.Close()
	db2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if got, err := db2.JobsStream(ctx); err != nil || got != "s2" {
		t.Fatalf("mark after a reopen: %q, %v", got, err)
	}
}

// TestAdoptJobsStreamEmptyFirst: a store that recorded no stream (one from
// before the mark, or restored from such a backup) finding the stream
// empty while runs are marked published requeues them: their jobs are
// nowhere.
func TestAdoptJobsStreamEmptyFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	r := newRun(1)
	mustCreate(t, db, r)
	if err := db.MarkPublished(ctx, r.RunID, 1); err != nil {
		t.Fatal(err)
	}
	if n, err := db.AdoptJobsStream(ctx, "s1", true); err != nil || n != 1 {
		t.Fatalf("requeued %d, %v; want 1", n, err)
	}
	if un, err := db.Unpublished(ctx); err != nil || !slices.Equal(ids(un), []string{r.RunID}) {
		t.Fatalf("unpublished %v, %v", ids(un), err)
	}
}

// TestActiveRuns: the running runs by worker and attempt, ended and
// queued ones left out.
func TestActiveRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	a, b, c, d := newRun(1), newRun(2), newRun(3), newRun(4)
	for _, r := range []*jobs.Run{a, b, c, d} {
		mustCreate(t, db, r)
	}
	if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(a, 1, 1, jobs.StatusRunning),
		ev(b, 1, 1, jobs.StatusStarting, func(e *jobs.Event) { e.Worker = "w2" }),
		ev(c, 1, 1, jobs.StatusSucceeded)}); err != nil {
		t.Fatal(err)
	}
	got, err := db.ActiveRuns(ctx)
	slices.SortFunc(got, func(x, y ActiveRun) int { return strings.Compare(x.RunID, y.RunID) })
	want := []ActiveRun{{a.RunID, "w1", 1}, {b.RunID, "w2", 1}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ActiveRuns = %+v, %v; want %+v", got, err, want)
	}
}
