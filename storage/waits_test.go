package storage

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// waitsFor makes a run wait for the runs ids, success each.
func waitsFor(ids ...string) func(*jobs.Run) {
	return func(r *jobs.Run) {
		for _, id := range ids {
			r.DependsOn = append(r.DependsOn, jobs.DependencyState{RunID: id, Condition: jobs.CondSuccess})
		}
	}
}

// TestWaitingRunsAreIndexedAndNotRepublished: run_waits follows what the
// waiting runs' documents say through every write (create, update,
// requeue); a waiting run is not among the unpublished runs until it is
// released, and one released is.
func TestWaitingRunsAreIndexedAndNotRepublished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	a, b := newRun(1), newRun(2)
	c := newRun(3, waitsFor(a.RunID, b.RunID))
	d := newRun(4, waitsFor(c.RunID))
	plain := newRun(5)
	for _, r := range []*jobs.Run{a, b, c, d, plain} {
		mustCreate(t, db, r)
	}
	check := func(what string, wantUnpublished, wantWaiting []string, waitingFor map[string][]string) {
		t.Helper()
		un, err := db.Unpublished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(un); !slices.Equal(got, wantUnpublished) {
			t.Errorf("%s: unpublished %v, want %v", what, got, wantUnpublished)
		}
		w, err := db.WaitingRuns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(w, wantWaiting) {
			t.Errorf("%s: waiting %v, want %v", what, w, wantWaiting)
		}
		for dep, want := range waitingFor {
			got, err := db.WaitingFor(ctx, dep)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: waiting for %s: %v, want %v", what, dep, got, want)
			}
		}
	}
	check("created", []string{a.RunID, b.RunID, plain.RunID}, []string{c.RunID, d.RunID},
		map[string][]string{a.RunID: {c.RunID}, b.RunID: {c.RunID}, c.RunID: {d.RunID}, plain.RunID: nil})
	if got, err := db.WaitingFor(ctx, a.RunID, b.RunID, c.RunID); err != nil || !slices.Equal(got, []string{c.RunID, d.RunID}) {
		t.Errorf("waiting for a, b or c: %v, %v", got, err)
	}

	// a ended: c records it and waits for b alone.
	if _, err := db.UpdateRun(ctx, c.RunID, func(r *jobs.Run) bool {
		r.DependsOn[0].Status = jobs.StatusSucceeded
		return true
	}); err != nil {
		t.Fatal(err)
	}
	check("one of two ended", []string{a.RunID, b.RunID, plain.RunID}, []string{c.RunID, d.RunID},
		map[string][]string{a.RunID: nil, b.RunID: {c.RunID}})

	// b ended: c is released, and unpublished.
	if _, err := db.UpdateRun(ctx, c.RunID, func(r *jobs.Run) bool {
		r.DependsOn[1].Status = jobs.StatusSucceeded
		return true
	}); err != nil {
		t.Fatal(err)
	}
	check("released", []string{a.RunID, b.RunID, c.RunID, plain.RunID}, []string{d.RunID}, map[string][]string{b.RunID: nil})

	// d is canceled while it waits: nothing waits any more.
	if _, err := db.UpdateRun(ctx, d.RunID, func(r *jobs.Run) bool { return r.Cancel(time.Now(), "stopped") }); err != nil {
		t.Fatal(err)
	}
	check("canceled", []string{a.RunID, b.RunID, c.RunID, plain.RunID}, nil, map[string][]string{c.RunID: nil})

	// A requeue writes the rows too (a run never waits again, but the
	// rows follow the document whatever it says).
	e := newRun(6, waitsFor(a.RunID))
	mustCreate(t, db, e)
	if _, _, err := db.RequeueRun(ctx, e.RunID, func(r *jobs.Run) bool {
		r.DependsOn[0].Status = jobs.StatusSucceeded
		return true
	}); err != nil {
		t.Fatal(err)
	}
	check("requeued", []string{a.RunID, b.RunID, c.RunID, plain.RunID, e.RunID}, nil, map[string][]string{a.RunID: nil})
}

// TestWaitingOnEnded: the runs waiting for a run that ended, or that is
// not stored, are found; those waiting for runs not ended are not.
func TestWaitingOnEnded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	at := t0
	ended, going := endedRun(1, jobs.StatusFailed, &at), newRun(2)
	mustCreate(t, db, ended)
	mustCreate(t, db, going)
	onEnded, onGoing, onGone := newRun(3, waitsFor(ended.RunID)), newRun(4, waitsFor(going.RunID)), newRun(5, waitsFor("01GONE"))
	for _, r := range []*jobs.Run{onEnded, onGoing, onGone} {
		mustCreate(t, db, r)
	}
	got, err := db.WaitingOnEnded(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{onEnded.RunID, onGone.RunID}; !slices.Equal(got, want) {
		t.Errorf("WaitingOnEnded = %v, want %v", got, want)
	}
	st, err := db.RunStatuses(ctx, ended.RunID, going.RunID, "01GONE")
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[ended.RunID] != jobs.StatusFailed || st[going.RunID] != jobs.StatusQueued {
		t.Errorf("RunStatuses = %v", st)
	}
}

// TestPruneKeepsARunWaitedFor: an ended run that a run still waits for
// is kept by the prune, a stage run too (with its pipeline run), until
// that run is resolved.
func TestPruneKeepsARunWaitedFor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newPruneFixture(t, 3)
	var run, stage string
	for _, id := range f.due {
		r, err := f.db.GetRun(ctx, id)
		if err != nil {
			continue // a pipeline run
		}
		if r.Spec.Stage != nil && stage == "" {
			stage = id
		} else if r.Spec.Stage == nil && run == "" {
			run = id
		}
	}
	if run == "" || stage == "" {
		t.Fatalf("the fixture has no due run (%q) or stage run (%q): %v", run, stage, f.due)
	}
	w := newRun(9000, waitsFor(run, stage))
	w.Tags = map[string]string{"team": "data", "run": w.RunID} // as the fixture's runs, for consistent
	mustCreate(t, f.db, w)
	if _, err := f.db.PruneHistory(ctx, Prune{EndedBefore: f.cutoff}); err != nil {
		t.Fatal(err)
	}
	if got := f.present(t, []string{run, stage}); !slices.Equal(got, []string{run, stage}) {
		t.Fatalf("after a prune, of the runs waited for, %v are left", got)
	}
	if _, err := f.db.UpdateRun(ctx, w.RunID, func(r *jobs.Run) bool {
		r.DependsOn[0].Status, r.DependsOn[1].Status = jobs.StatusSucceeded, jobs.StatusSucceeded
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.PruneHistory(ctx, Prune{EndedBefore: f.cutoff}); err != nil {
		t.Fatal(err)
	}
	if got := f.present(t, []string{run, stage}); len(got) != 0 {
		t.Fatalf("resolved, the runs waited for are still there: %v", got)
	}
	f.consistent(t)
}
