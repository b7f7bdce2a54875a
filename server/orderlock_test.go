package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// orderLockDeadline bounds how long TestOrderLockMixedLoadEnds waits for
// its goroutines. It tells a hang from a slow machine, not a speed: the
// work takes a few seconds; a deadlock takes forever.
const orderLockDeadline = 2 * time.Minute

// TestOrderLockMixedLoadEnds runs every kind of holder of lockOrder at
// once, on the same runs: submissions (shared, across the group commit
// and the send), some waiting for a dependency or a pool slot (shared,
// then exclusive in the same goroutine: resolveWaiting, releasePools),
// reports applied in batches (exclusive, then dependencies and pools
// resolved), stops, sweeps that change placement reasons as a worker
// comes and goes, and announcement checks. A writer waiting for
// lockOrder holds up new readers (sync.RWMutex), so a holder that waited,
// holding it, for anything another holder or a would-be holder needs
// would hang here. On a hang the test fails with every goroutine's stack.
func TestOrderLockMixedLoadEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, q, db := testStack(t)
	s := New(db, q)
	now := time.Now().UTC()
	if _, _, err := db.SetPool(ctx, "p", 2, now); err != nil {
		t.Fatal(err)
	}
	td, _ := json.Marshal(bigTask(10))

	const submitters, perSubmitter = 4, 40
	submitted := make(chan *jobs.Run, submitters*perSubmitter)
	var work sync.WaitGroup
	errs := make(chan error, 64)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	var subs sync.WaitGroup
	for i := range submitters {
		subs.Go(func() {
			var prev string
			for j := range perSubmitter {
				req := &jobs.SubmitRequest{TaskDefinition: td}
				switch j % 4 {
				case 1:
					if prev != "" {
						req.DependsOn = []jobs.RunDependency{{RunID: prev}}
					}
				case 2:
					req.Pool = "p"
				}
				r, err := s.Submit(ctx, req)
				if err != nil {
					fail(fmt.Errorf("submitter %d: %w", i, err))
					return
				}
				prev = r.RunID
				submitted <- r
			}
		})
	}
	work.Go(func() {
		subs.Wait()
		close(submitted)
	})

	// The reports: each run taken runs and ends, in batches of a few runs,
	// half of them failed so that their dependents fail too.
	stops := make(chan string, submitters*perSubmitter)
	work.Go(func() {
		defer close(stops)
		var batch []jobs.Event
		n := 0
		apply := func() {
			if len(batch) > 0 {
				s.applyBatch(ctx, &queue.EventBatch{Events: batch})
				batch = nil
			}
		}
		for r := range submitted {
			n++
			if n%5 == 0 {
				stops <- r.RunID // the stopper's
				continue
			}
			if r.Status != jobs.StatusQueued || r.Waiting() || r.WaitingForSlot() {
				continue
			}
			code := n % 2
			t0 := time.Now().UTC()
			batch = append(batch,
				jobs.Event{RunID: r.RunID, Attempt: 1, Seq: 1, Status: jobs.StatusRunning, Worker: "w1", Time: t0},
				jobs.Event{RunID: r.RunID, Attempt: 1, Seq: 2, Status: endOf(code), Worker: "w1", Time: t0, ExitCode: &code})
			if len(batch) >= 8 {
				apply()
			}
		}
		apply()
	})
	work.Go(func() {
		for id := range stops {
			if _, err := s.Stop(ctx, id, ""); err != nil {
				fail(fmt.Errorf("stop %s: %w", id, err))
			}
		}
	})
	// The sweep and the announcement checks, until the rest is done.
	looping, stopLoops := context.WithCancel(ctx)
	var loops sync.WaitGroup
	loops.Go(func() {
		st := newSweepState()
		w := jobs.WorkerInfo{ID: "w1", Cluster: "default", Capacity: jobs.Resources{CPU: 4096, Memory: 8192, Slots: 4},
			State: jobs.WorkerActive}
		for i := 0; looping.Err() == nil; i++ {
			// A worker that comes and goes: the sweep changes the queued
			// runs' placement reasons each round (sweepUpdate).
			var err error
			if i%2 == 0 {
				err = q.Beat(ctx, w)
			} else {
				err = q.Leave(ctx, w.ID)
			}
			if err != nil {
				fail(fmt.Errorf("worker: %w", err))
				return
			}
			s.fleetMu.Lock()
			s.fleetAt = time.Time{} // read the fleet anew
			s.fleetMu.Unlock()
			st.fullAt = time.Time{} // look at every queued run
			if err := s.sweepOnce(ctx, st); err != nil {
				fail(fmt.Errorf("sweep: %w", err))
				return
			}
		}
	})
	loops.Go(func() {
		for looping.Err() == nil {
			runs, err := db.ListRuns(ctx, storage.RunFilter{Limit: 20})
			if err != nil {
				fail(fmt.Errorf("list runs: %w", err))
				return
			}
			for _, r := range runs {
				s.ann.checkLater(r.RunID, nil)
			}
			s.recheckAnnouncements(ctx)
			s.settleAnnouncements(ctx)
		}
	})

	done := make(chan struct{})
	go func() {
		work.Wait()
		stopLoops()
		loops.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(orderLockDeadline):
		buf := make([]byte, 1<<22)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("not done within %s: a holder of lockOrder waits for something that waits for it?\n%s", orderLockDeadline, buf)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s.bg.Wait()
}

func endOf(code int) jobs.Status {
	if code == 0 {
		return jobs.StatusSucceeded
	}
	return jobs.StatusFailed
}

// BenchmarkSubmitWhileApplying measures submissions (shared lockOrder)
// while another goroutine applies the workers' reports of the runs
// submitted (exclusive lockOrder), as the control plane does under load.
// Run with -mutexprofile (or -blockprofile) to see how long each waits
// for lockOrder; waits/op counts the holds that had to wait.
func BenchmarkSubmitWhileApplying(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, q, db := testStack(b)
	var waits atomic.Int64
	s := New(db, q, func(c *config) { c.orderWaits = func() { waits.Add(1) } })
	td, _ := json.Marshal(bigTask(10))
	ids := make(chan string, 4096)
	var applier sync.WaitGroup
	applier.Go(func() {
		var batch []jobs.Event
		now := time.Now().UTC()
		zero := 0
		for {
			select {
			case id := <-ids:
				batch = append(batch,
					jobs.Event{RunID: id, Attempt: 1, Seq: 1, Status: jobs.StatusRunning, Worker: "w1", Time: now},
					jobs.Event{RunID: id, Attempt: 1, Seq: 2, Status: jobs.StatusSucceeded, Worker: "w1", Time: now, ExitCode: &zero})
				if len(batch) < 64 {
					continue
				}
			case <-ctx.Done():
				return
			}
			s.applyBatch(ctx, &queue.EventBatch{Events: batch})
			batch = nil
		}
	})
	b.SetParallelism(8) // many clients, as the control-plane benchmark's
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td})
			if err != nil {
				b.Error(err)
				return
			}
			select {
			case ids <- r.RunID:
			default: // the applier is behind: this run stays queued
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(waits.Load())/float64(b.N), "waits/op")
	cancel()
	applier.Wait()
	s.bg.Wait()
}

// A NATS that takes no more publishes (acks not coming back: too many
// outstanding) has a publish wait up to 200 ms for room before it fails.
// Under lockOrder, a batch of reports that changed many runs would so
// hold every change and submission up for 200 ms a run: the first
// publish that fails has the others of the hold fail without being
// tried. The reports are applied all the same, and the batch, its
// announcements failed, is applied again later (not acknowledged).
func TestStalledPublishesFailTheRestOfTheHold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc, q, db := testStack(t)
	var logs syncBuffer
	s := New(db, q, WithLogger(zerolog.New(&logs)))
	ids := []string{"r1", "r2", "r3", "r4", "r5", "r6"}
	createQueued(t, db, ids...)

	// Publishes to a subject whose only listener never acknowledges fill
	// the connection's room for publishes awaiting their acks.
	sub, err := nc.Subscribe("stall.>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	for {
		_, err := q.JetStream().PublishAsync("stall.x", nil, jetstream.WithStallWait(time.Millisecond))
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	now := time.Now().UTC()
	var evs []jobs.Event
	for _, id := range ids {
		evs = append(evs, jobs.Event{RunID: id, Attempt: 1, Seq: 1, Status: jobs.StatusRunning, Worker: "w1", Time: now})
	}
	s.applyBatch(ctx, &queue.EventBatch{Events: evs})

	for _, id := range ids {
		if r, err := db.GetRun(ctx, id); err != nil || r.Status != jobs.StatusRunning {
			t.Errorf("run %s not applied: %v %v", id, r, err)
		}
	}
	out := logs.String()
	if got := strings.Count(out, "publish status; its report is applied again"); got != len(ids) {
		t.Errorf("%d announcements failed, want %d:\n%s", got, len(ids), out)
	}
	if got := strings.Count(out, "not tried, a publish before it failed"); got != len(ids)-1 {
		t.Errorf("%d announcements not tried, want %d (all but the first):\n%s", got, len(ids)-1, out)
	}
	if !strings.Contains(out, jetstream.ErrTooManyStalledMsgs.Error()) {
		t.Errorf("the log does not say why:\n%s", out)
	}
}
