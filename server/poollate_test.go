package server

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
	"github.com/gantry-dev/gantry/workerq"
)

// TestPoolLateEndKeepsTheSlotForTheNextAttempt plays what the chaos test
// found in a pool of one slot: w1 runs run a's attempt 1 and is cut off
// for longer than its lease; w2 is handed the job and takes it for lost,
// as attempt 2. Before w2's report of the loss reaches the server, w1's
// end of attempt 1 does, and ends the run. The slot must not go to the
// pool's next run b while attempt 2 runs: a keeps it until attempt 2
// ends, then b starts.
func TestPoolLateEndKeepsTheSlotForTheNextAttempt(t *testing.T) {
	e := startLostEnv(t)
	e.setPool("p", 1)
	a, b := e.inPool("p"), e.inPool("p")
	e.takeAsLostWorker(a.RunID, true) // w1 renews no lease: cut off

	var (
		mu     sync.Mutex
		events []string // what the containers did, in order
	)
	note := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	a2Runs, a2Ends := make(chan struct{}), make(chan struct{})
	var endOnce sync.Once
	letA2End := func() { endOnce.Do(func() { close(a2Ends) }) }
	rt := runtimeFunc(func(_ context.Context, task *worker.Task, _ worker.LogSink) (*worker.Result, error) {
		zero := 0
		if task.RunID == a.RunID {
			note("a's attempt 2 started")
			close(a2Runs)
			<-a2Ends
			note("a's attempt 2 ended")
		} else {
			note(task.RunID + " started")
		}
		return &worker.Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &zero}}}, nil
	})
	// w1's end reaches the server after w2 claimed the job as attempt 2,
	// before w2's report of w1's loss.
	e.startW2(rt, nil, &reportFirst{Reporter: workerq.Reporter{Q: e.q}, first: func() { e.w1Succeeds(a.RunID) }})
	t.Cleanup(letA2End) // before the worker's: it waits for the runtime

	select {
	case <-a2Runs:
	case <-time.After(30 * time.Second):
		t.Fatal("w2 did not run a's attempt 2 within 30s")
	}
	r := e.get(a.RunID)
	if r.Status != jobs.StatusSucceeded || r.PoolState() != jobs.PoolKept {
		t.Fatalf("a: %s, pool state %v; want SUCCEEDED by w1's report, keeping its slot", r.Status, r.PoolState())
	}
	if k := r.PoolSlotKept; k.Worker != "w2" || k.Attempt != 2 {
		t.Errorf("kept for %+v, want w2's attempt 2", k)
	}
	if got := e.get(b.RunID); !got.WaitingForSlot() {
		t.Fatalf("b took the slot while a's attempt 2 runs: %s, slot %v", got.Status, got.PoolSlotAt)
	}
	e.checkPool("p", 1, 1)

	letA2End()
	e.waitRun(b.RunID, "succeeded", func(r *jobs.Run) bool { return r.Status == jobs.StatusSucceeded })
	if got := e.get(a.RunID); got.PoolSlotKept != nil || got.Status != jobs.StatusSucceeded || len(got.Attempts) != 2 || got.Attempts[1].AfterEnd == "" {
		t.Errorf("a after attempt 2's end: %s, kept %+v, attempts %+v", got.Status, got.PoolSlotKept, got.Attempts)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"a's attempt 2 started", "a's attempt 2 ended", b.RunID + " started"}; !slices.Equal(events, want) {
		t.Errorf("containers: %q, want %q", events, want)
	}
}

// endFirst is the worker's claims, whose first write of a claim over
// another (a take for a lost worker's) first runs first: the run's end
// stored between the worker's look at the claim and its write.
type endFirst struct {
	workerq.Claims
	once  sync.Once
	first func()
}

func (c *endFirst) PutClaim(ctx context.Context, runID string, data []byte, rev uint64) (uint64, error) {
	if rev != 0 {
		c.once.Do(c.first)
	}
	return c.Claims.PutClaim(ctx, runID, data, rev)
}

// TestPoolEndBetweenALostTakeAndItsClaim: as above, but w1's end reaches
// the server after w2 found w1 lost and before w2's claim of attempt 2 is
// written. The server marks the claim done as it ends the run, so w2's
// write fails, and w2 finds the attempt ended: it leaves the job, and the
// next run b takes the slot with no attempt of a beside it.
func TestPoolEndBetweenALostTakeAndItsClaim(t *testing.T) {
	e := startLostEnv(t)
	e.setPool("p", 1)
	a, b := e.inPool("p"), e.inPool("p")
	e.takeAsLostWorker(a.RunID, true)

	var (
		mu  sync.Mutex
		ran []string
	)
	rt := runtimeFunc(func(_ context.Context, task *worker.Task, _ worker.LogSink) (*worker.Result, error) {
		mu.Lock()
		ran = append(ran, task.RunID)
		mu.Unlock()
		zero := 0
		return &worker.Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &zero}}}, nil
	})
	e.startW2(rt, &endFirst{Claims: workerq.Claims{Q: e.q}, first: func() { e.w1Succeeds(a.RunID) }}, nil)

	e.waitRun(b.RunID, "succeeded", func(r *jobs.Run) bool { return r.Status == jobs.StatusSucceeded })
	e.waitJobsDone() // a's job too: left as a late delivery, or run and then acknowledged
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(ran, []string{b.RunID}) {
		t.Errorf("w2 ran %q, want b alone", ran)
	}
	if got := e.get(a.RunID); got.Status != jobs.StatusSucceeded || len(got.Attempts) != 1 || got.PoolSlotKept != nil {
		t.Errorf("a: %s, attempts %+v, kept %+v; want w1's success alone", got.Status, got.Attempts, got.PoolSlotKept)
	}
}
