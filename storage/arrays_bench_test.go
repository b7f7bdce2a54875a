package storage

import (
	"context"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// BenchmarkRecomputeArray is the cost of recomputing an array run of
// 10,000 children after one of them changed: paid once per change (or
// batch of changes) of its children, it must not grow with their number.
func BenchmarkRecomputeArray(b *testing.B) {
	ctx := context.Background()
	db, _ := openDB(b)
	parent, children := newArray(1, 10000, "")
	if _, _, _, err := db.CreateArrayRun(ctx, parent, children); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		id := children[i%len(children)].RunID
		if _, err := db.UpdateRun(ctx, id, func(r *jobs.Run) bool {
			r.Status = jobs.StatusRunning
			return true
		}); err != nil {
			b.Fatal(err)
		}
		if _, _, _, _, err := db.RecomputeArray(ctx, parent.RunID, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateChildOnly is BenchmarkRecomputeArray without the
// recomputation: what a child's change costs alone.
func BenchmarkUpdateChildOnly(b *testing.B) {
	ctx := context.Background()
	db, _ := openDB(b)
	parent, children := newArray(1, 10000, "")
	if _, _, _, err := db.CreateArrayRun(ctx, parent, children); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		id := children[i%len(children)].RunID
		if _, err := db.UpdateRun(ctx, id, func(r *jobs.Run) bool {
			r.Status = jobs.StatusRunning
			return true
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListArrayChildrenPage is the cost of a page of 100 of an
// array's 10,000 children by index, the last page (each page is a range
// of runs_array_children, not a sort of every child), and of a page of
// its FAILED children when few failed (the index is walked, each other
// child's row read to test its status).
func BenchmarkListArrayChildrenPage(b *testing.B) {
	ctx := context.Background()
	db, _ := openDB(b)
	parent, children := newArray(1, 10000, "")
	if _, _, _, err := db.CreateArrayRun(ctx, parent, children); err != nil {
		b.Fatal(err)
	}
	for _, i := range []int{17, 4242, 9998} {
		if _, err := db.UpdateRun(ctx, children[i].RunID, func(r *jobs.Run) bool { r.Status = jobs.StatusFailed; return true }); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		f    RunFilter
		n    int
	}{
		{"last", RunFilter{ArrayJobID: parent.RunID, FromIndex: 9900, Limit: 100}, 100},
		{"failed", RunFilter{ArrayJobID: parent.RunID, Statuses: []jobs.Status{jobs.StatusFailed}, Limit: 100}, 3},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				runs, err := db.ListRuns(ctx, c.f)
				if err != nil || len(runs) != c.n {
					b.Fatalf("%d runs, %v; want %d", len(runs), err, c.n)
				}
			}
		})
	}
}
