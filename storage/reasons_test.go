package storage

import (
	"context"
	"fmt"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestRunStatusReasons: the reasons of runs not ended are read as they are
// now; those of ended runs, of runs without one and of unknown ids are
// left out; more ids than one statement takes are read in several.
func TestRunStatusReasons(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	placed := "no worker in cluster default has labels gpu=t4"
	mustCreate(t, db, newRun(1, func(r *jobs.Run) { r.StatusReason = placed }))
	mustCreate(t, db, newRun(2)) // queued, no reason
	mustCreate(t, db, newRun(3, func(r *jobs.Run) {
		r.Status, r.StoppedReason, r.StatusReason = jobs.StatusFailed, "Essential container exited", "stale"
	}))
	var ids []string
	for i := 1; i <= reasonsBatch+20; i++ {
		ids = append(ids, fmt.Sprintf("01RUN%06d", i))
	}
	// The last of them, past the first statement's, has a reason too.
	last := newRun(reasonsBatch+20, func(r *jobs.Run) { r.StatusReason = "waiting for a slot of pool etl" })
	mustCreate(t, db, last)

	got, err := db.RunStatusReasons(ctx, append(ids, "01NOSUCHRUN"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"01RUN000001": placed, last.RunID: "waiting for a slot of pool etl"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}

	// A reason that changes is read as it is now.
	if _, err := db.UpdateRun(ctx, "01RUN000001", func(r *jobs.Run) bool {
		r.StatusReason = "no live worker in cluster default"
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.RunStatusReasons(ctx, []string{"01RUN000001"}); err != nil || got["01RUN000001"] != "no live worker in cluster default" {
		t.Fatalf("after the update: got %v, %v", got, err)
	}
	if got, err := db.RunStatusReasons(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("no ids: got %v, %v", got, err)
	}
}

// BenchmarkRunStatusReasons reads the reasons of a 10,000-wide array
// stage's runs, all queued with one, as pipelines.get does for a pipeline
// run under way (20 statements of 500 ids).
func BenchmarkRunStatusReasons(b *testing.B) {
	db, _ := openDB(b)
	ctx := context.Background()
	const n = 10000
	ids := make([]string, n)
	for i := range n {
		r := newRun(i+1, func(r *jobs.Run) { r.StatusReason = "no worker in cluster default has labels gpu=t4" })
		mustCreate(b, db, r)
		ids[i] = r.RunID
	}
	b.ResetTimer()
	for b.Loop() {
		got, err := db.RunStatusReasons(ctx, ids)
		if err != nil || len(got) != n {
			b.Fatalf("%d reasons, %v", len(got), err)
		}
	}
}
