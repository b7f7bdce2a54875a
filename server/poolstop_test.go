package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/worker"
	"github.com/gantry-dev/gantry/workerq"
)

// inPool submits a run into pool on e's server.
func (e *lostEnv) inPool(pool string) *jobs.Run {
	e.t.Helper()
	r, err := e.s.Submit(e.ctx, &jobs.SubmitRequest{Pool: pool,
		TaskDefinition: json.RawMessage(`{"family":"load","containerDefinitions":[{"name":"main","image":"load:1","essential":true}]}`)})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// setPool creates pool name with slots.
func (e *lostEnv) setPool(name string, slots int) {
	e.t.Helper()
	if _, _, err := e.db.SetPool(e.ctx, name, slots, e.now()); err != nil {
		e.t.Fatal(err)
	}
}

// checkPool checks pool name's slots in use and runs waiting.
func (e *lostEnv) checkPool(name string, inUse, waiting int) {
	e.t.Helper()
	p, err := e.db.GetPool(e.ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	if p.InUse != inUse || p.Waiting != waiting {
		e.t.Errorf("pool %s: %d in use, %d waiting; want %d and %d", name, p.InUse, p.Waiting, inUse, waiting)
	}
}

// get reads run id from the store.
func (e *lostEnv) get(id string) *jobs.Run {
	e.t.Helper()
	r, err := e.db.GetRun(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// startPoolWorker runs a real worker w1 with two slots and claims in the
// queue's bucket, stopping the runs the server's cancel messages name,
// whose reports before an attempt's end wait for it (its start is not
// recorded while the runtime runs).
func (e *lostEnv) startPoolWorker(rt worker.Runtime) {
	e.t.Helper()
	cons, err := e.q.Jobs(e.ctx, "default", "w1")
	if err != nil {
		e.t.Fatal(err)
	}
	w := worker.New("w1", "default", workerq.Source{C: cons}, rt, workerq.Reporter{Q: e.q},
		worker.WithClaims(workerq.Claims{Q: e.q}), worker.WithSlots(2), worker.WithReportLinger(time.Hour),
		worker.WithGracePeriod(time.Second))
	sub, err := e.q.SubscribeCancels(func(c queue.CancelMsg) { w.Cancel(c.RunID, c.Reason) })
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	e.t.Cleanup(func() { sub.Unsubscribe(); cancel(); <-done })
}

// TestPoolStopRightAfterATakeKeepsTheSlot: in a pool of one slot, a run
// is stopped just after worker w1 took its job, its start not yet
// recorded. The stop answers at once (CANCELED), but the pool's next run
// must not start until w1 has stopped the first one's containers and
// reported it: the slot stays in use meanwhile, and frees when that end
// is applied.
func TestPoolStopRightAfterATakeKeepsTheSlot(t *testing.T) {
	e := startLostEnv(t)
	e.setPool("p", 1)
	a, b := e.inPool("p"), e.inPool("p")
	if a.PoolSlotAt == nil || !b.WaitingForSlot() {
		t.Fatalf("a: slot %v; b: %s %q; want a holding the slot, b waiting", a.PoolSlotAt, b.Status, b.StatusReason)
	}

	var (
		mu     sync.Mutex
		events []string // what the containers did, in order
	)
	note := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	took := make(chan string, 4)
	aGoes := make(chan struct{}) // a's containers are gone (their stopTimeout over)
	var goOnce sync.Once
	letAGo := func() { goOnce.Do(func() { close(aGoes) }) }
	e.startPoolWorker(runtimeFunc(func(ctx context.Context, task *worker.Task, _ worker.LogSink) (*worker.Result, error) {
		took <- task.RunID
		code := 0
		if task.RunID == a.RunID {
			<-ctx.Done() // the stop reaches w1
			<-aGoes
			note("a's containers gone")
			code = 143
		} else {
			note(task.RunID + " started")
		}
		return &worker.Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &code}}}, nil
	}))
	t.Cleanup(letAGo) // before the worker's: it waits for a's runtime

	select {
	case id := <-took:
		if id != a.RunID {
			t.Fatalf("w1 took %s first, want %s", id, a.RunID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("w1 took no job within 10s")
	}
	if r := e.get(a.RunID); r.Status != jobs.StatusQueued {
		t.Fatalf("a is %s once w1 took its job; want its start not yet recorded (QUEUED)", r.Status)
	}

	stopped, err := e.s.Stop(e.ctx, a.RunID, "not wanted")
	if err != nil {
		t.Fatal(err)
	}
	if stopped.Status != jobs.StatusCanceled || stopped.PoolState() != jobs.PoolKept {
		t.Errorf("stop: %s, pool state %v; want CANCELED at once, keeping the slot", stopped.Status, stopped.PoolState())
	}
	if k := stopped.PoolSlotKept; k != nil && (k.Worker != "w1" || k.Attempt != 1) {
		t.Errorf("kept for %+v, want w1's attempt 1", k)
	}
	if r := e.get(b.RunID); !r.WaitingForSlot() {
		t.Errorf("b took the slot while w1 still stops a's containers: %s, slot %v", r.Status, r.PoolSlotAt)
	}
	e.checkPool("p", 1, 1)
	e.sweep() // w1 sends no heartbeat here: seen gone, not yet for long
	e.checkPool("p", 1, 1)

	letAGo()
	freed := e.waitRun(a.RunID, "freeing its slot", func(r *jobs.Run) bool { return r.PoolSlotKept == nil })
	if freed.Status != jobs.StatusCanceled || freed.StoppedReason != "not wanted" {
		t.Errorf("a after w1's report: %s %q", freed.Status, freed.StoppedReason)
	}
	e.waitRun(b.RunID, "succeeded", func(r *jobs.Run) bool { return r.Status == jobs.StatusSucceeded })
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"a's containers gone", b.RunID + " started"}; !slices.Equal(events, want) {
		t.Errorf("containers: %q, want %q", events, want)
	}
}

// TestPoolStopFreesAtOnceWhenNoWorkerHoldsTheJob: a stop of a run
// waiting for a slot leaves the slots as they are; a stop of a run
// released into the slot whose job no worker took yet frees it at once,
// with no worker to wait for, and the next run takes it. The worker
// that takes the stopped run's job later only reports it canceled.
func TestPoolStopFreesAtOnceWhenNoWorkerHoldsTheJob(t *testing.T) {
	e := startLostEnv(t)
	e.setPool("p", 1)
	a, b, c := e.inPool("p"), e.inPool("p"), e.inPool("p")
	e.checkPool("p", 1, 2)

	r, err := e.s.Stop(e.ctx, c.RunID, "not wanted")
	if err != nil || r.Status != jobs.StatusCanceled || r.PoolSlotKept != nil {
		t.Fatalf("stop of a waiting run: %+v, %v", r, err)
	}
	e.checkPool("p", 1, 1)

	r, err = e.s.Stop(e.ctx, a.RunID, "not wanted")
	if err != nil || r.Status != jobs.StatusCanceled || r.PoolSlotKept != nil {
		t.Fatalf("stop of a released run no worker took: %+v, %v", r, err)
	}
	if got := e.get(b.RunID); got.PoolSlotAt == nil {
		t.Fatalf("b did not take the freed slot: %s %q", got.Status, got.StatusReason)
	}
	e.checkPool("p", 1, 0)

	e.startPoolWorker(runtimeFunc(func(_ context.Context, task *worker.Task, _ worker.LogSink) (*worker.Result, error) {
		e.ran <- task.Attempt
		if task.RunID != b.RunID {
			t.Errorf("the worker ran %s", task.RunID)
		}
		zero := 0
		return &worker.Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &zero}}}, nil
	}))
	e.waitRun(b.RunID, "succeeded", func(r *jobs.Run) bool { return r.Status == jobs.StatusSucceeded })
	e.waitJobsDone()
	if got := e.ranAttempts(); len(got) != 1 {
		t.Errorf("ran %v, want b's attempt alone", got)
	}
	if got := e.get(a.RunID); got.Status != jobs.StatusCanceled || got.StartedAt != nil {
		t.Errorf("a: %s, started %v", got.Status, got.StartedAt)
	}
}

// takeJob plays worker w1 taking the next job, which must be run id's,
// and claiming it as the worker package does; it reports nothing.
func (e *lostEnv) takeJob(id string) (*queue.Delivery, uint64) {
	e.t.Helper()
	cons, err := e.q.Jobs(e.ctx, "default", "w1")
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := cons.Next(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if d.Job().RunID != id {
		e.t.Fatalf("took job of %s, want %s", d.Job().RunID, id)
	}
	rev, err := e.q.PutClaim(e.ctx, id, []byte(fmt.Sprintf(`{"attempt":1,"worker":"w1","job":1,"seq":%d}`, d.Seq())), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return d, rev
}

// TestPoolKeptSlotFreedBySweep: the slot a stopped run keeps for worker
// w1 is freed by the sweep when w1 never reports: once w1 has been gone
// for the lease plus a heartbeat's TTL, at once when its job left the
// queue, at once when the claim shows w1 let the job go; a stop after
// w1 handed the job back keeps nothing.
func TestPoolKeptSlotFreedBySweep(t *testing.T) {
	for _, tc := range []string{"worker gone", "job acknowledged", "job handed back", "handed back before the stop"} {
		t.Run(tc, func(t *testing.T) {
			e := startLostEnv(t)
			e.setPool("p", 1)
			a, b := e.inPool("p"), e.inPool("p")
			d, rev := e.takeJob(a.RunID)
			handBack := func() {
				c := fmt.Sprintf(`{"attempt":1,"worker":"w1","job":1,"seq":%d,"handedBack":true}`, d.Seq())
				if _, err := e.q.PutClaim(e.ctx, a.RunID, []byte(c), rev); err != nil {
					t.Fatal(err)
				}
			}
			if tc == "handed back before the stop" {
				handBack()
			}
			r, err := e.s.Stop(e.ctx, a.RunID, "not wanted")
			if err != nil {
				t.Fatal(err)
			}
			if tc == "handed back before the stop" {
				if r.PoolSlotKept != nil || e.get(b.RunID).PoolSlotAt == nil {
					t.Fatalf("stop after a hand-back: kept %+v; want the slot freed and b released", r.PoolSlotKept)
				}
				return
			}
			if r.PoolState() != jobs.PoolKept {
				t.Fatalf("stop after w1 took the job: %v", r.PoolState())
			}
			e.sweep() // w1 first seen gone
			e.checkPool("p", 1, 1)
			switch tc {
			case "worker gone":
				e.advance(testAckWait + queue.PresenceTTL - time.Millisecond)
				e.sweep()
				e.checkPool("p", 1, 1)
				e.advance(time.Millisecond)
			case "job acknowledged":
				if err := d.Ack(e.ctx); err != nil {
					t.Fatal(err)
				}
			case "job handed back":
				handBack()
			}
			e.sweep()
			if got := e.get(a.RunID); got.PoolSlotKept != nil || got.Status != jobs.StatusCanceled {
				t.Fatalf("after the sweep: %s, kept %+v", got.Status, got.PoolSlotKept)
			}
			if got := e.get(b.RunID); got.PoolSlotAt == nil {
				t.Errorf("b did not take the freed slot: %q", got.StatusReason)
			}
			e.checkPool("p", 1, 0)
		})
	}
}

// TestPoolKeptSlotAcrossARestart: a server restarted while a stopped run
// keeps its slot does not give the slot to the next run, at start nor at
// its sweep while the worker lives; the worker's report, applied by the
// new server, frees it, once.
func TestPoolKeptSlotAcrossARestart(t *testing.T) {
	e := startLostEnv(t)
	e.setPool("p", 1)
	a, b, c := e.inPool("p"), e.inPool("p"), e.inPool("p")
	e.takeJob(a.RunID)
	if r, err := e.s.Stop(e.ctx, a.RunID, "not wanted"); err != nil || r.PoolState() != jobs.PoolKept {
		t.Fatalf("stop: %v, %v", r.PoolState(), err)
	}

	e.stopServer()
	// w1 is alive as far as the new server knows.
	if err := e.q.Beat(e.ctx, jobs.WorkerInfo{ID: "w1", Cluster: "default", State: jobs.WorkerActive}); err != nil {
		t.Fatal(err)
	}
	e.startServer()
	e.sweep()
	e.advance(time.Hour)
	e.sweep()
	e.checkPool("p", 1, 2)
	for _, id := range []string{b.RunID, c.RunID} {
		if r := e.get(id); !r.WaitingForSlot() {
			t.Fatalf("run %s took the kept slot after the restart", id)
		}
	}

	if err := e.q.Report(e.ctx, &jobs.Event{RunID: a.RunID, Attempt: 1, Seq: 2, Status: jobs.StatusCanceled,
		Source: jobs.SourceWorker, Worker: "w1", Time: e.now(), StopCode: jobs.StopUserInitiated, StoppedReason: "not wanted"}); err != nil {
		t.Fatal(err)
	}
	e.waitRun(b.RunID, "released", func(r *jobs.Run) bool { return r.PoolSlotAt != nil })
	e.sweep()
	e.checkPool("p", 1, 1)
	if r := e.get(c.RunID); !r.WaitingForSlot() {
		t.Errorf("c took a slot too: %q", r.StatusReason)
	}
}
