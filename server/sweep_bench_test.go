package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
)

// BenchmarkSweep measures one sweep over a backlog of queued runs that
// nothing changes between sweeps: the steady state of a busy queue (idle),
// and one that looks at every queued run, as after a change of the fleet
// (full). The backlog is published, one worker is live and 50 runs run on
// it.
func BenchmarkSweep(b *testing.B) {
	for _, n := range []int{5000, 50000} {
		b.Run(fmt.Sprintf("queued=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s, q, db := benchServer(b)
			w := jobs.WorkerInfo{ID: "w1", Cluster: "default", Capacity: jobs.Resources{CPU: 4096, Memory: 8192, Slots: 4},
				State: jobs.WorkerActive}
			if err := q.Beat(ctx, w); err != nil {
				b.Fatal(err)
			}
			// The seeded runs count as published: their jobs are in this
			// stream, as far as the server knows (jobsstream.go).
			if err := s.checkJobsStream(ctx); err != nil {
				b.Fatal(err)
			}
			seedRuns(b, db, n, 50)
			st := newSweepState()
			if err := s.sweepOnce(ctx, st); err != nil { // the first sweep looks at everything
				b.Fatal(err)
			}
			b.Run("idle", func(b *testing.B) {
				for b.Loop() {
					if err := s.sweepOnce(ctx, st); err != nil {
						b.Fatal(err)
					}
				}
			})
			// What a fleet change costs: a look at every queued run.
			b.Run("full", func(b *testing.B) {
				for b.Loop() {
					st.fullAt = time.Time{}
					if err := s.sweepOnce(ctx, st); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func benchServer(tb testing.TB) (*Server, *queue.Queue, *storage.DB) {
	tb.Helper()
	_, q, db := testStack(tb)
	return New(db, q), q, db
}

// seedRuns stores queued runs whose job is published, and running runs on
// worker w1, as the server would have left them.
func seedRuns(tb testing.TB, db *storage.DB, queued, running int) {
	tb.Helper()
	ctx := context.Background()
	td := jobs.TaskDefinition{Family: "bench", Revision: 1,
		ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "bench:latest", Memory: 128,
			Command: []string{"/bin/true"}}}}
	now := time.Now().UTC()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	errc := make(chan error, 1)
	for i := range queued + running {
		r := &jobs.Run{RunID: fmt.Sprintf("r%07d", i), Status: jobs.StatusQueued, TaskDefinition: "bench:1",
			Cluster: "default", CreatedAt: now, Containers: []jobs.ContainerResult{},
			Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: now}},
			Spec:     jobs.RunSpec{Task: td}}
		if i >= queued {
			r.Status, r.Worker = jobs.StatusRunning, "w1"
			r.Attempts[0].Status, r.Attempts[0].Worker, r.Attempts[0].StartedAt = jobs.StatusRunning, "w1", &now
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, _, err := db.CreateRun(ctx, r)
			if err == nil {
				err = db.MarkPublished(ctx, r.RunID, 1)
			}
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		tb.Fatal(err)
	default:
	}
}
