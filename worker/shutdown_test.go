package worker

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// outlivesGrace runs a first attempt until it is stopped, closing started
// once it runs, and ends SIGTERM's 143 as the runtime stopped it; later
// attempts exit 0 at once.
func outlivesGrace(started chan struct{}) Runtime {
	return fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) {
		if task.Attempt > 1 {
			return exited(0), nil
		}
		close(started)
		<-ctx.Done()
		code := 143
		return &Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &code,
			Reason: StoppedPrefix + context.Cause(ctx).Error()}}}, nil
	})
}

// TestShutdownHandsTheJobBack: a task still running when the worker's
// grace period runs out is stopped and reported FAILED TerminationNotice,
// Redelivered, and its job handed back to the queue (nak, not ack), as a
// crash would leave it: the worker that takes it next (here the same one,
// restarted) runs attempt 2, with no lost worker to report.
func TestShutdownHandsTheJobBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newQueuedClaims(7)
		rep := &fakeReporter{}
		started := make(chan struct{})
		rt := outlivesGrace(started)
		src := &queueSource{leases: make(chan *queueLease, 1)}
		l := &queueLease{src: src, job: job("r"), acked: make(chan struct{}), seq: 7}
		w := New("w1", "default", src, rt, rep, WithClaims(cl), WithGracePeriod(time.Second))
		stop := runWorker(t, w)
		src.leases <- l
		<-started
		stop() // SIGTERM: the task outlives the grace period
		if st := w.Stats(); st.HandedBack != (HandBacks{Shutdown: 1}) || st.AttemptsEnded != (EndCounts{}) || st.TasksRunning != 0 {
			t.Errorf("stats after the shutdown: %+v, want one job handed back, no attempt ended, no task running", st)
		}
		select {
		case <-l.acked:
			t.Fatal("the job of the attempt stopped by the shutdown was acknowledged")
		default:
		}
		if src.nakCount() != 1 {
			t.Fatalf("%d naks, want the job handed back once", src.nakCount())
		}
		ev := rep.last()
		if ev.Attempt != 1 || ev.Status != jobs.StatusFailed || ev.StopCode != jobs.StopTerminationNotice || !ev.Redelivered ||
			ev.ExitCode == nil || *ev.ExitCode != 143 {
			t.Fatalf("last event %+v, want attempt 1 FAILED TerminationNotice, redelivered", ev)
		}
		if c := cl.get("r"); !c.HandedBack || c.Done || c.Attempt != 1 || c.Seq != 7 {
			t.Fatalf("claim after the shutdown: %+v, want attempt 1 handed back", c)
		}

		// Restarted, the worker takes the job back and runs attempt 2.
		n := len(rep.events)
		stop = runWorker(t, New("w1", "default", src, rt, rep, WithClaims(cl)))
		<-l.acked
		stop()
		rep.mu.Lock()
		evs := rep.events[n:]
		rep.mu.Unlock()
		for _, ev := range evs {
			if ev.Attempt != 2 || ev.StopCode == jobs.StopWorkerLost {
				t.Fatalf("after the restart: %+v, want only attempt 2's events", evs)
			}
		}
		if last := evs[len(evs)-1]; last.Status != jobs.StatusSucceeded {
			t.Fatalf("attempt 2 ended %s", last.Status)
		}
		if c := cl.get("r"); c.Attempt != 2 || c.Losses != 0 || c.HandedBack {
			t.Fatalf("claim after attempt 2: %+v, want attempt 2 and no loss", c)
		}
	})
}

// TestShutdownLeavesAJobTakenOverToItsLease: when another worker took the
// job over while this one still ran its attempt (this one's lease lapsed),
// the shutdown's hand-back cannot mark the claim and sends no nak: NATS
// takes a nak from a stale delivery, and would put back in the queue the
// job the other worker runs, for a third to run beside it.
func TestShutdownLeavesAJobTakenOverToItsLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		cl := newQueuedClaims(7)
		rep := &fakeReporter{}
		started := make(chan struct{})
		rt := outlivesGrace(started)
		src := &queueSource{leases: make(chan *queueLease, 1)}
		l := &queueLease{src: src, job: job("r"), acked: make(chan struct{}), seq: 7}
		stop := runWorker(t, New("w1", "default", src, rt, rep, WithClaims(cl), WithGracePeriod(time.Second)))
		src.leases <- l
		<-started
		_, rev, err := cl.Claim(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		other, _ := json.Marshal(claim{Attempt: 2, Worker: "w2", Seq: 7})
		if _, err := cl.PutClaim(ctx, "r", other, rev); err != nil {
			t.Fatal(err)
		}
		stop()
		if n := src.nakCount(); n != 0 {
			t.Fatalf("%d naks of a job another worker had taken over, want none", n)
		}
		select {
		case <-l.acked:
			t.Fatal("the job another worker runs was acknowledged")
		default:
		}
		if c := cl.get("r"); c.Worker != "w2" || c.Attempt != 2 {
			t.Fatalf("claim %+v, want w2's attempt 2 untouched", c)
		}
	})
}

// statePresence records the state of each heartbeat, and whether the
// last said the worker stops.
type statePresence struct {
	mu       sync.Mutex
	states   []jobs.WorkerState
	stopping bool
}

func (p *statePresence) Beat(_ context.Context, info jobs.WorkerInfo) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.states = append(p.states, info.State)
	p.stopping = info.Stopping
	return nil
}

func (p *statePresence) Leave(context.Context, string) error { return nil }

func (p *statePresence) lastStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

func (p *statePresence) last() jobs.WorkerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.states) == 0 {
		return ""
	}
	return p.states[len(p.states)-1]
}

// TestStoppingWorkerBeatsDraining: a worker told to stop (SIGTERM) went
// on beating ACTIVE through its grace period, so gantry workers ls, the
// server's slot gauges and placement reasons, and the other workers
// counted on a worker that takes nothing more. It beats DRAINING at once,
// and says it stops (Stopping), which a drained worker does not: gantry
// workers activate tells the one from the other.
func TestStoppingWorkerBeatsDraining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &statePresence{}
		started, release := make(chan struct{}), make(chan struct{})
		rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) {
			close(started)
			<-release
			return exited(0), nil
		})
		src := &queueSource{leases: make(chan *queueLease, 1)}
		w := New("w1", "default", src, rt, &fakeReporter{}, WithPresence(p, 5*time.Second), WithGracePeriod(time.Minute))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		src.leases <- &queueLease{src: src, job: job("r"), acked: make(chan struct{})}
		<-started
		time.Sleep(beatGap)
		synctest.Wait()
		if st := p.last(); st != jobs.WorkerActive {
			t.Fatalf("running a task: heartbeat says %q, want %q", st, jobs.WorkerActive)
		}
		w.Drain(true)
		time.Sleep(beatGap)
		synctest.Wait()
		if st, stopping := p.last(), p.lastStopping(); st != jobs.WorkerDraining || stopping {
			t.Fatalf("drained: heartbeat says %q, stopping %v; want %q, not stopping", st, stopping, jobs.WorkerDraining)
		}
		w.Drain(false)
		cancel() // SIGTERM: the task has a minute left
		time.Sleep(beatGap)
		synctest.Wait()
		if st := p.last(); st != jobs.WorkerDraining {
			t.Errorf("stopping, its task in its grace period: heartbeat says %q, want %q", st, jobs.WorkerDraining)
		}
		if !p.lastStopping() {
			t.Error("stopping, its task in its grace period: the heartbeat does not say it stops")
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
