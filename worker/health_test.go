package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
)

// errNoDaemon is what the Docker client says of a daemon that is gone.
var errNoDaemon = errors.New("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")

// daemonRuntime is a Runtime and Pinger whose daemon can go away: while it
// is down, Ping fails and Run fails as the Docker runtime's create does.
type daemonRuntime struct {
	mu          sync.Mutex
	down        bool
	pings, runs int
	ran         []int // attempts run while up
}

func (d *daemonRuntime) setDown(down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = down
}

func (d *daemonRuntime) counts() (pings, runs int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pings, d.runs
}

func (d *daemonRuntime) Ping(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pings++
	if d.down {
		return errNoDaemon
	}
	return nil
}

func (d *daemonRuntime) Run(_ context.Context, t *Task, _ LogSink) (*Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.runs++
	if d.down {
		return nil, errors.New("create container main: " + errNoDaemon.Error())
	}
	d.ran = append(d.ran, t.Attempt)
	return exited(0), nil
}

// orphanLeftovers finds, once set, the containers of an attempt the
// runtime lost track of.
type orphanLeftovers struct {
	mu      sync.Mutex
	found   []Leftover
	removed []string
}

func (o *orphanLeftovers) Leftovers(context.Context) ([]Leftover, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.found, nil
}

func (o *orphanLeftovers) RemoveLeftover(_ context.Context, l Leftover) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.removed = append(o.removed, l.RunID)
	return nil
}

// TestUnreachableRuntimeTakesNoJobs: the Docker daemon is gone. The job
// the worker took fails to start; it is not failed but handed back
// (WorkerLost, Redelivered: no attempt used up), and the worker takes no
// job until a ping of its runtime succeeds, saying why in its heartbeats
// and logging the change once each way. Then it removes the containers
// the outage orphaned, takes the job again and runs it as attempt 2, with
// no lost worker to report.
func TestUnreachableRuntimeTakesNoJobs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newQueuedClaims(7)
		rep := &fakeReporter{}
		rt := &daemonRuntime{down: true}
		logs := &syncBuffer{}
		src := &queueSource{leases: make(chan *queueLease, 1)}
		lo := &orphanLeftovers{}
		w := New("w1", "default", src, rt, rep, WithClaims(cl), WithLogger(zerolog.New(logs)), WithLeftovers(lo))
		runWorker(t, w)
		l := &queueLease{src: src, job: job("r"), acked: make(chan struct{}), seq: 7}
		src.leases <- l
		synctest.Wait()
		// Handed back for a while; the take loop, already waiting for
		// a job, may get it once more and hand it back at once.
		src.mu.Lock()
		naks := append([]time.Duration(nil), src.naks...)
		src.mu.Unlock()
		if len(naks) == 0 || naks[0] != 5*time.Second {
			t.Fatalf("naks %v, want the job handed back for 5s", naks)
		}
		ev := rep.last()
		if ev.Attempt != 1 || ev.Status != jobs.StatusFailed || ev.StopCode != jobs.StopWorkerLost || !ev.Redelivered ||
			!strings.Contains(ev.StoppedReason, "could not reach its container runtime") {
			t.Fatalf("last event %+v, want attempt 1 WorkerLost, redelivered", ev)
		}
		if c := cl.get("r"); !c.HandedBack || c.Attempt != 1 {
			t.Fatalf("claim %+v, want attempt 1 handed back", c)
		}
		if st := w.Stats(); st.HandedBack.RuntimeDown != 1 || st.AttemptsEnded != (EndCounts{}) {
			t.Errorf("stats %+v, want the job handed back once for the runtime, no attempt ended", st)
		}
		if info := w.Info(); info.RuntimeError != errNoDaemon.Error() || info.State != jobs.WorkerActive {
			t.Fatalf("heartbeat says %s %q, want the ping's error", info.State, info.RuntimeError)
		}

		time.Sleep(time.Minute) // the job waits in the queue; the worker pings
		if pings, runs := rt.counts(); runs != 1 || pings < 10 {
			t.Fatalf("%d runs and %d pings while the daemon was gone, want 1 run and a ping every %s", runs, pings, runtimePingEvery)
		}

		lo.mu.Lock()
		lo.found = []Leftover{{RunID: "orphan", Attempt: 1, Running: true}}
		lo.mu.Unlock()
		rt.setDown(false)
		<-l.acked
		lo.mu.Lock()
		if len(lo.removed) != 1 || lo.removed[0] != "orphan" {
			t.Errorf("removed %v, want the orphan's containers", lo.removed)
		}
		lo.mu.Unlock()
		if ev := rep.last(); ev.Attempt != 2 || ev.Status != jobs.StatusSucceeded {
			t.Fatalf("last event %+v, want attempt 2 SUCCEEDED", ev)
		}
		rep.mu.Lock()
		for _, ev := range rep.events {
			if ev.Seq == lostSeq {
				t.Errorf("a lost worker was reported: %+v", ev)
			}
		}
		rep.mu.Unlock()
		if w.Info().RuntimeError != "" {
			t.Fatal("the heartbeat still says the runtime is unreachable")
		}
		out := logs.String()
		if strings.Count(out, "container runtime unreachable: taking no jobs") != 1 || strings.Count(out, "container runtime answers again") != 1 {
			t.Fatalf("log, want the change logged once each way:\n%s", out)
		}
	})
}

// lostRuntime is a daemonRuntime whose daemon goes away while the task
// runs: the task's container started, and how it ended is unknown.
type lostRuntime struct {
	daemonRuntime
	gone bool // the daemon is still gone when the runtime returns
}

func (l *lostRuntime) Run(_ context.Context, t *Task, _ LogSink) (*Result, error) {
	t.Started([]jobs.ContainerResult{{Name: "main"}})
	l.setDown(l.gone)
	return &Result{Containers: []jobs.ContainerResult{{Name: "main", Reason: LostPrefix + "wait: unexpected EOF"}}}, nil
}

// TestRuntimeLostWhileTheTaskRan: a task whose container ran when the
// runtime lost track of it did not fail to start: it ends
// EssentialContainerExited, counted, its reason saying the container was
// lost and, when the runtime no longer answers, that the connection to it
// was lost. Its job is acknowledged: its container may still run.
func TestRuntimeLostWhileTheTaskRan(t *testing.T) {
	for _, tt := range []struct {
		name   string
		gone   bool
		reason string
	}{
		{"daemon gone", true, "Lost the connection to the container runtime while the task ran (" + errNoDaemon.Error() +
			"); Essential container in task was lost: main: Lost track of the container: wait: unexpected EOF"},
		{"daemon back", false, "Essential container in task was lost: main: Lost track of the container: wait: unexpected EOF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &lostRuntime{}
				rt.gone = tt.gone
				ev := runOne(t, job("r"), 1, rt, &fakeReporter{}, nil, WithClaims(newQueuedClaims()))
				if ev.Status != jobs.StatusFailed || ev.StopCode != jobs.StopEssentialExited || ev.Redelivered ||
					ev.StoppedReason != tt.reason {
					t.Fatalf("final event %s %s %q, want FAILED %s %q", ev.Status, ev.StopCode, ev.StoppedReason,
						jobs.StopEssentialExited, tt.reason)
				}
			})
		})
	}
}

// TestRuntimeErrorWhileItAnswersFailsTheRun: a runtime that answers a ping
// after it could not run a task (an image missing, a create refused) fails
// the run as before.
func TestRuntimeErrorWhileItAnswersFailsTheRun(t *testing.T) {
	rt := &refusingRuntime{}
	ev := runOne(t, job("r"), 1, rt, &fakeReporter{}, nil, WithClaims(newQueuedClaims()))
	if ev.Status != jobs.StatusFailed || ev.StopCode != jobs.StopFailedToStart || ev.Redelivered {
		t.Fatalf("final event %+v, want FAILED TaskFailedToStart", ev)
	}
	if rt.pings != 1 {
		t.Fatalf("%d pings, want 1", rt.pings)
	}
}

type refusingRuntime struct{ daemonRuntime }

func (r *refusingRuntime) Run(context.Context, *Task, LogSink) (*Result, error) {
	return nil, errors.New(`image "nope" is not on this worker's host and the pull policy is never`)
}

// partlyStartedRuntime could not start a task's second container, the
// first one already running, and its daemon no longer answers.
type partlyStartedRuntime struct{ daemonRuntime }

func (p *partlyStartedRuntime) Run(context.Context, *Task, LogSink) (*Result, error) {
	p.setDown(true)
	return nil, fmt.Errorf("start container b: %s (%w)", errNoDaemon, ErrSomeStarted)
}

// TestRuntimeGoneAfterAContainerStartedFailsTheRun: a task one of whose
// containers had started when the runtime went away is not handed back as
// one that never ran: the container may still run, beside the next
// attempt a hand-back would start elsewhere. It fails, counted.
func TestRuntimeGoneAfterAContainerStartedFailsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &partlyStartedRuntime{}
		ev := runOne(t, job("r"), 1, rt, &fakeReporter{}, nil, WithClaims(newQueuedClaims()))
		if ev.Status != jobs.StatusFailed || ev.StopCode != jobs.StopFailedToStart || ev.Redelivered {
			t.Fatalf("final event %s %s redelivered=%v %q, want FAILED TaskFailedToStart, not handed back",
				ev.Status, ev.StopCode, ev.Redelivered, ev.StoppedReason)
		}
	})
}
