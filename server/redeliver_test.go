package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
	"github.com/gantry-dev/gantry/worker"
	"github.com/gantry-dev/gantry/workerq"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// lostEnv is a server over an embedded NATS server with a short ack wait,
// whose sweep the test drives by hand on a clock of its own; events are
// applied by the running server.
type lostEnv struct {
	t     *testing.T
	ctx   context.Context
	nc    *nats.Conn
	q     *queue.Queue
	db    *storage.DB
	s     *Server
	st    *sweepState
	mu    sync.Mutex
	clock time.Time
	ran   chan int // attempts the fake runtime ran
	// stopServer stops e.s and waits for it.
	stopServer func()
}

const testAckWait = time.Second

func startLostEnv(t *testing.T) *lostEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nc, q, db := testStack(t, queue.WithAckWait(testAckWait))
	e := &lostEnv{t: t, ctx: ctx, nc: nc, q: q, db: db, clock: time.Now().UTC(), ran: make(chan int, 10)}
	e.startServer()
	t.Cleanup(func() { e.stopServer() })
	return e
}

// startServer starts a server over e's store and queue, with a sweep
// state of its own, and waits until it answers.
func (e *lostEnv) startServer() {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	e.st = newSweepState()
	e.s = New(e.db, e.q, WithClock(e.now), WithSweepInterval(time.Hour))
	done := make(chan error, 1)
	go func(s *Server) { done <- s.Run(ctx) }(e.s)
	var once sync.Once
	e.stopServer = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := e.nc.Request("gantry.api.runs.list", nil, time.Second); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not answer within 10s")
		}
	}
}

func (e *lostEnv) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clock
}

func (e *lostEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clock = e.clock.Add(d)
}

func (e *lostEnv) sweep() {
	e.t.Helper()
	if err := e.s.sweepOnce(e.ctx, e.st); err != nil {
		e.t.Fatal(err)
	}
}

func (e *lostEnv) submit() *jobs.Run {
	e.t.Helper()
	r, err := e.s.Submit(e.ctx, &jobs.SubmitRequest{
		TaskDefinition: json.RawMessage(`{"family":"lost","containerDefinitions":[{"name":"main","image":"lost:1","essential":true}]}`)})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// waitRun waits until ok holds for the stored run.
func (e *lostEnv) waitRun(id string, what string, ok func(*jobs.Run) bool) *jobs.Run {
	e.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := e.db.GetRun(e.ctx, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(r, "", "  ")
			e.t.Fatalf("run never %s:\n%s", what, b)
		}
	}
}

// takeAsLostWorker plays worker w1 up to the point it goes silent: it takes
// the run's job, claims attempt 1 as the worker package does (with the job
// message's sequence, or as older workers did without it) and reports it
// RUNNING. It sends no heartbeat, so the server sees no w1.
func (e *lostEnv) takeAsLostWorker(id string, withSeq bool) (*queue.Delivery, uint64) {
	e.t.Helper()
	cons, err := e.q.Jobs(e.ctx, "default", "w1")
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := cons.Next(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if d.Job().RunID != id || d.Job().Attempt != 1 {
		e.t.Fatalf("took job %s/%d", d.Job().RunID, d.Job().Attempt)
	}
	c := `{"attempt":1,"worker":"w1","job":1}`
	if withSeq {
		c = fmt.Sprintf(`{"attempt":1,"worker":"w1","job":1,"seq":%d}`, d.Seq())
	}
	rev, err := e.q.PutClaim(e.ctx, id, []byte(c), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.q.Report(e.ctx, &jobs.Event{RunID: id, Attempt: 1, Seq: 1, Status: jobs.StatusRunning,
		Source: jobs.SourceWorker, Worker: "w1", Time: e.now()}); err != nil {
		e.t.Fatal(err)
	}
	e.waitRun(id, "RUNNING on w1", func(r *jobs.Run) bool { return r.Status == jobs.StatusRunning })
	return d, rev
}

// markLost sweeps until the server records w1's attempt as lost.
func (e *lostEnv) markLost(id string) {
	e.t.Helper()
	e.sweep() // w1 first seen gone
	e.advance(testAckWait + queue.PresenceTTL)
	e.sweep()
	r := e.waitRun(id, "lost with w1", func(r *jobs.Run) bool { return len(r.Attempts) == 2 })
	if r.Status != jobs.StatusQueued || !r.Attempts[1].Redelivery || r.Attempts[0].StopCode != jobs.StopWorkerLost {
		e.t.Fatalf("after the loss: %s, attempts %+v", r.Status, r.Attempts)
	}
}

// startWorker runs a real worker, with claims in the queue's bucket, whose
// runtime succeeds at once and tells e.ran the attempt it ran.
func (e *lostEnv) startWorker(id string) {
	e.t.Helper()
	cons, err := e.q.Jobs(e.ctx, "default", id)
	if err != nil {
		e.t.Fatal(err)
	}
	rt := runtimeFunc(func(_ context.Context, task *worker.Task, _ worker.LogSink) (*worker.Result, error) {
		e.ran <- task.Attempt
		zero := 0
		return &worker.Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &zero}}}, nil
	})
	w := worker.New(id, "default", workerq.Source{C: cons}, rt, workerq.Reporter{Q: e.q}, worker.WithClaims(workerq.Claims{Q: e.q}))
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

// jobsPublished is how many job messages the jobs stream ever stored.
func (e *lostEnv) jobsPublished() uint64 {
	e.t.Helper()
	st, err := e.q.JetStream().Stream(e.ctx, queue.StreamJobs)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.LastSeq
}

// waitJobsDone waits until no job is left in the queue: every delivery
// was acknowledged.
func (e *lostEnv) waitJobsDone() {
	e.t.Helper()
	st, err := e.q.JetStream().Stream(e.ctx, queue.StreamJobs)
	if err != nil {
		e.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * testAckWait); ; time.Sleep(50 * time.Millisecond) {
		info, err := st.Info(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d jobs left in the queue", info.State.Msgs)
		}
	}
}

// ranAttempts drains e.ran after the run ended.
func (e *lostEnv) ranAttempts() []int {
	var out []int
	for {
		select {
		case a := <-e.ran:
			out = append(out, a)
		case <-time.After(300 * time.Millisecond):
			return out
		}
	}
}

// TestLostAttemptThatFinishedIsRunAgain: the server takes w1 for lost (no
// heartbeat) while w1 in fact finishes the job and acknowledges it, so no
// redelivery comes. The sweep must publish the job of the Redelivery
// attempt once its grace is over, and the run must end; when w1's ack was
// lost and its job comes back too, it must not run a second time. w1 is a
// worker of this version (its claim holds the job's sequence, and it marks
// the claim done only when its ack fails: the job's leaving the queue says
// the rest) or an older one (no sequence; it marks every claim done).
func TestLostAttemptThatFinishedIsRunAgain(t *testing.T) {
	for _, tc := range []struct{ withSeq, ackLost bool }{{true, false}, {true, true}, {false, false}, {false, true}} {
		t.Run(fmt.Sprintf("withSeq=%v/ackLost=%v", tc.withSeq, tc.ackLost), func(t *testing.T) {
			ackLost := tc.ackLost
			e := startLostEnv(t)
			r := e.submit()
			d, rev := e.takeAsLostWorker(r.RunID, tc.withSeq)
			e.markLost(r.RunID)

			// w1 was alive: it finishes attempt 1 (an event the server no
			// longer takes), marks its claim done where it must and
			// acknowledges the job.
			zero := 0
			if err := e.q.Report(e.ctx, &jobs.Event{RunID: r.RunID, Attempt: 1, Seq: 2, Status: jobs.StatusSucceeded,
				Source: jobs.SourceWorker, Worker: "w1", Time: e.now(), ExitCode: &zero}); err != nil {
				t.Fatal(err)
			}
			if !tc.withSeq || ackLost {
				done := fmt.Sprintf(`{"attempt":1,"worker":"w1","job":1,"done":true,"seq":%d}`, d.Seq())
				if _, err := e.q.PutClaim(e.ctx, r.RunID, []byte(done), rev); err != nil {
					t.Fatal(err)
				}
			}
			if !ackLost {
				if err := d.Ack(e.ctx); err != nil {
					t.Fatal(err)
				}
			}

			e.sweep() // within the grace: nothing published
			if n := e.jobsPublished(); n != 1 {
				t.Fatalf("%d jobs published within the grace period, want 1", n)
			}
			e.advance(e.s.redeliveryGrace())
			e.sweep()
			if n := e.jobsPublished(); n != 2 {
				t.Fatalf("%d jobs published after the grace period, want 2", n)
			}
			e.sweep() // and only once
			if n := e.jobsPublished(); n != 2 {
				t.Fatalf("%d jobs published after another sweep, want 2", n)
			}

			e.startWorker("w2")
			got := e.waitRun(r.RunID, "ended", func(r *jobs.Run) bool { return r.Status.Terminal() })
			if got.Status != jobs.StatusSucceeded || len(got.Attempts) != 2 || got.Attempts[1].Worker != "w2" ||
				got.Attempts[0].StopCode != jobs.StopWorkerLost {
				t.Fatalf("run ended %s with attempts %+v", got.Status, got.Attempts)
			}
			e.waitJobsDone() // with ackLost, w1's job came back to w2 meanwhile
			if ran := e.ranAttempts(); !slices.Equal(ran, []int{2}) {
				t.Fatalf("attempts run: %v, want [2]", ran)
			}
		})
	}
}

// TestGenuineRedeliveryRunsOnce: w1 dies holding the job. The sweep records
// its attempt as lost and must publish nothing, however long the
// redelivery takes: the queue hands the job to w2, which runs it once, as
// attempt 2.
func TestGenuineRedeliveryRunsOnce(t *testing.T) {
	e := startLostEnv(t)
	r := e.submit()
	e.takeAsLostWorker(r.RunID, true) // and never heard of again
	e.markLost(r.RunID)
	e.sweep()
	e.advance(10 * e.s.redeliveryGrace()) // no worker free for a long while
	e.sweep()
	if n := e.jobsPublished(); n != 1 {
		t.Fatalf("%d jobs published while the lost job may still come back, want 1", n)
	}

	e.startWorker("w2")
	got := e.waitRun(r.RunID, "ended", func(r *jobs.Run) bool { return r.Status.Terminal() })
	e.advance(10 * e.s.redeliveryGrace())
	e.sweep()
	if got.Status != jobs.StatusSucceeded || len(got.Attempts) != 2 || got.Attempts[1].Worker != "w2" {
		t.Fatalf("run ended %s with attempts %+v", got.Status, got.Attempts)
	}
	if n := e.jobsPublished(); n != 1 {
		t.Fatalf("%d jobs published, want 1", n)
	}
	e.waitJobsDone()
	if ran := e.ranAttempts(); !slices.Equal(ran, []int{2}) {
		t.Fatalf("attempts run: %v, want [2]", ran)
	}
}

type runtimeFunc func(context.Context, *worker.Task, worker.LogSink) (*worker.Result, error)

func (f runtimeFunc) Run(ctx context.Context, t *worker.Task, logs worker.LogSink) (*worker.Result, error) {
	return f(ctx, t, logs)
}

// TestEndedRunIsNotRunAgainWhenItsWorkerWentBeforeTheAck: w1 stores its
// attempt's end and goes (a crash) before it acknowledges the job, so the
// queue hands the job out again. Its claim is not done, as workers mark
// claims done only when an ack fails; the worker that takes the job finds
// the run ended and acknowledges the job without running it again.
func TestEndedRunIsNotRunAgainWhenItsWorkerWentBeforeTheAck(t *testing.T) {
	e := startLostEnv(t)
	r := e.submit()
	e.takeAsLostWorker(r.RunID, true)
	zero := 0
	if err := e.q.Report(e.ctx, &jobs.Event{RunID: r.RunID, Attempt: 1, Seq: 2, Status: jobs.StatusSucceeded,
		Source: jobs.SourceWorker, Worker: "w1", Time: e.now(), ExitCode: &zero}); err != nil {
		t.Fatal(err)
	}
	e.waitRun(r.RunID, "SUCCEEDED", func(r *jobs.Run) bool { return r.Status == jobs.StatusSucceeded })
	// The server announces the end asynchronously; the worker reads it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ended, err := e.q.RunEnded(e.ctx, r.RunID); err != nil {
			t.Fatal(err)
		} else if ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never announced the run's end")
		}
	}

	e.startWorker("w2") // takes the job once w1's lease runs out
	e.waitJobsDone()
	if ran := e.ranAttempts(); len(ran) != 0 {
		t.Fatalf("attempts run again: %v, want none", ran)
	}
	got := e.waitRun(r.RunID, "still ended", func(r *jobs.Run) bool { return r.Status.Terminal() })
	if got.Status != jobs.StatusSucceeded || len(got.Attempts) != 1 || got.Attempts[0].Worker != "w1" {
		t.Fatalf("run %s with attempts %+v", got.Status, got.Attempts)
	}
}

// TestDuplicateJobIsNotRunBesideTheLiveAttempt: the same job is published
// again after the queue's duplicate window (a server restarted late
// republishes what it had not marked published) while w1 runs it. The
// worker that takes the second message finds the claimed one still queued
// and acknowledges its own without running it; attempt 1 stays w1's.
func TestDuplicateJobIsNotRunBesideTheLiveAttempt(t *testing.T) {
	e := startLostEnv(t)
	r := e.submit()
	d, _ := e.takeAsLostWorker(r.RunID, true)
	alive := make(chan struct{})
	defer close(alive)
	go func() { // w1 keeps its lease, as a live worker does
		tick := time.NewTicker(testAckWait / 4)
		defer tick.Stop()
		for {
			select {
			case <-alive:
				return
			case <-tick.C:
				_ = d.InProgress()
			}
		}
	}()
	data, err := json.Marshal(jobs.Job{RunID: r.RunID, Attempt: 1, Cluster: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.q.JetStream().Publish(e.ctx, queue.JobSubject("default", ""), data,
		jetstream.WithMsgID(r.RunID+"/1/again")); err != nil {
		t.Fatal(err)
	}

	e.startWorker("w2")
	st, err := e.q.JetStream().Stream(e.ctx, queue.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := st.Info(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 1 { // the duplicate acknowledged, w1's left
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d job messages queued, want w1's alone", info.State.Msgs)
		}
	}
	if ran := e.ranAttempts(); len(ran) != 0 {
		t.Fatalf("attempts run beside w1's: %v, want none", ran)
	}
	got, err := e.db.GetRun(e.ctx, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != jobs.StatusRunning || len(got.Attempts) != 1 || got.Attempts[0].Worker != "w1" {
		t.Fatalf("run %s with attempts %+v", got.Status, got.Attempts)
	}
}

// TestShutdownHandsTheJobToTheNextWorker: w1 shuts down (SIGTERM) while its
// task runs and stops it when its grace period is over. The attempt is
// recorded TerminationNotice and does not count against the run's one
// attempt; its job goes back to the queue, where w2 takes it and runs
// attempt 2. No other job is published, however long the sweep waits.
func TestShutdownHandsTheJobToTheNextWorker(t *testing.T) {
	e := startLostEnv(t)
	r := e.submit()
	cons, err := e.q.Jobs(e.ctx, "default", "w1")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 1)
	rt := runtimeFunc(func(ctx context.Context, task *worker.Task, _ worker.LogSink) (*worker.Result, error) {
		started <- struct{}{}
		<-ctx.Done()
		code := 143
		return &worker.Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &code,
			Reason: worker.StoppedPrefix + context.Cause(ctx).Error()}}}, nil
	})
	w1 := worker.New("w1", "default", workerq.Source{C: cons}, rt, workerq.Reporter{Q: e.q},
		worker.WithClaims(workerq.Claims{Q: e.q}), worker.WithGracePeriod(100*time.Millisecond))
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- w1.Run(ctx) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("w1 never ran the job")
	}
	cancel()
	<-done
	got := e.waitRun(r.RunID, "handed back", func(r *jobs.Run) bool { return len(r.Attempts) == 2 })
	if a := got.Attempts[0]; got.Status != jobs.StatusQueued || a.StopCode != jobs.StopTerminationNotice ||
		!got.Attempts[1].Redelivery || got.Tries() != 1 {
		t.Fatalf("after w1's shutdown: %s, attempts %+v", got.Status, got.Attempts)
	}

	e.startWorker("w2")
	got = e.waitRun(r.RunID, "ended", func(r *jobs.Run) bool { return r.Status.Terminal() })
	e.advance(10 * e.s.redeliveryGrace())
	e.sweep()
	if got.Status != jobs.StatusSucceeded || len(got.Attempts) != 2 || got.Attempts[1].Worker != "w2" {
		t.Fatalf("run ended %s with attempts %+v", got.Status, got.Attempts)
	}
	if n := e.jobsPublished(); n != 1 {
		t.Fatalf("%d jobs published, want 1", n)
	}
	e.waitJobsDone()
	if ran := e.ranAttempts(); !slices.Equal(ran, []int{2}) {
		t.Fatalf("attempts run by w2: %v, want [2]", ran)
	}
}

// TestLostReasonSaysLastHeartbeat: a lost worker's attempt says since when
// the worker has been silent by its last heartbeat the server read, not by
// when the sweep first found it gone (a lease and more later); a worker
// the server never saw a heartbeat of since it started (gone while it was
// down, or before a restore) is said to be so, with the server's start.
func TestLostReasonSaysLastHeartbeat(t *testing.T) {
	t.Run("seen", func(t *testing.T) {
		e := startLostEnv(t)
		r := e.submit()
		e.takeAsLostWorker(r.RunID, true)
		last := e.now()
		e.beat("w1", []string{r.RunID})
		e.sweep() // w1 live
		e.advance(10 * time.Second)
		if err := e.q.Leave(e.ctx, "w1"); err != nil { // its heartbeats gone, as once they expire
			t.Fatal(err)
		}
		e.s.fleetMu.Lock()
		e.s.fleetCached = nil
		e.s.fleetMu.Unlock()
		e.markLost(r.RunID)
		want := "worker w1 has sent no heartbeat since " + last.Format(time.RFC3339) + "; the job goes to the next worker of cluster default that takes it"
		if got := e.get(r.RunID).Attempts[0].StoppedReason; got != want {
			t.Errorf("reason %q, want %q", got, want)
		}
	})
	t.Run("never seen", func(t *testing.T) {
		e := startLostEnv(t)
		started := e.now()
		e.advance(time.Minute)
		r := e.submit()
		e.takeAsLostWorker(r.RunID, true)
		e.markLost(r.RunID)
		want := "worker w1 has sent no heartbeat that this server saw (it started at " + started.Format(time.RFC3339) + ")"
		if got := e.get(r.RunID).Attempts[0].StoppedReason; !strings.HasPrefix(got, want+"; the job goes") {
			t.Errorf("reason %q, want it to start %q", got, want)
		}
	})
}
