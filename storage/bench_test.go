package storage

import (
	"context"
	"fmt"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// BenchmarkApplyEvents applies batches of 500 worker events, as the server
// does, and reports events per second. runs=500 spreads each batch over 500
// runs (one load and one write per event); runs=50 puts ten events of each
// run in a batch.
func BenchmarkApplyEvents(b *testing.B) {
	const batchSize = 500
	for _, nRuns := range []int{500, 50} {
		b.Run(fmt.Sprintf("runs=%d", nRuns), func(b *testing.B) {
			ctx := context.Background()
			db, _ := openDB(b)
			runs := make([]*jobs.Run, nRuns)
			for i := range runs {
				runs[i] = newRun(i)
				mustCreate(b, db, runs[i])
			}
			perRun := batchSize / nRuns
			seq := 0
			batch := make([]jobs.Event, 0, batchSize)
			b.ResetTimer()
			for b.Loop() {
				batch = batch[:0]
				for k := range perRun {
					for _, r := range runs {
						// Alternate non-terminal statuses so every event applies.
						s := jobs.StatusStarting
						if (seq+k)%2 == 1 {
							s = jobs.StatusRunning
						}
						batch = append(batch, ev(r, 1, seq+k+1, s))
					}
				}
				seq += perRun
				changed, err := db.ApplyEvents(ctx, batch)
				if err != nil {
					b.Fatal(err)
				}
				if len(changed) != nRuns {
					b.Fatalf("changed %d runs; want %d", len(changed), nRuns)
				}
			}
			b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
