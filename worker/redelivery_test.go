package worker

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
)

// A retry's job can reach the worker while the attempt before it is still
// being cleaned up (its end reported and acknowledged, its containers not
// yet removed). A stop then reaches the retry, and the run stays listed as
// running here until both are done.
func TestStopReachesARetryWhileTheAttemptBeforeIsCleanedUp(t *testing.T) {
	release := make(chan struct{})
	second := make(chan struct{})
	rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) {
		if task.Attempt == 1 {
			task.Finished(exited(1)) // reported; removing the containers takes a while
			<-release
			return exited(1), nil
		}
		close(second)
		<-ctx.Done()
		return exited(143), nil
	})
	rep := &fakeReporter{}
	src := &queueSource{leases: make(chan *queueLease, 2)}
	w := New("w1", "default", src, rt, rep, WithClaims(newQueuedClaims()), WithGracePeriod(5*time.Second))
	runWorker(t, w)

	first := &queueLease{src: src, job: job("r1"), acked: make(chan struct{}), seq: 7}
	src.leases <- first
	<-first.acked
	retry := job("r1")
	retry.Attempt = 2
	l2 := &queueLease{src: src, job: retry, acked: make(chan struct{}), seq: 8}
	src.leases <- l2
	<-second
	close(release)           // attempt 1's clean-up ends while attempt 2 runs
	waitFor(t, func() bool { // attempt 1's delivery is gone, attempt 2's stays
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.running["r1"]) == 1
	})
	if !w.Cancel("r1", "Stopped by user") {
		t.Fatal("Cancel did not find the retry")
	}
	select {
	case <-l2.acked:
	case <-time.After(10 * time.Second):
		t.Fatal("the stop did not reach the retry")
	}
	if ev := rep.last(); ev.Attempt != 2 || ev.Status != jobs.StatusCanceled {
		t.Fatalf("last event %+v, want attempt 2 CANCELED", ev)
	}
	waitFor(t, func() bool { return len(w.Running()) == 0 })
}

// The same job message delivered again to the worker still running it (its
// lease lapsed while the worker was cut off from NATS) is left to the
// attempt running here: no second attempt beside it, no WorkerLost.
func TestRedeliveryToTheWorkerRunningTheJob(t *testing.T) {
	var mu sync.Mutex
	runs := 0
	started := make(chan struct{}, 2)
	finish := make(chan struct{})
	rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) {
		mu.Lock()
		runs++
		mu.Unlock()
		started <- struct{}{}
		<-finish
		return exited(0), nil
	})
	rep := &fakeReporter{}
	cl := newQueuedClaims(7)
	src := &queueSource{leases: make(chan *queueLease, 2)}
	var logs syncBuffer
	w := New("w1", "default", src, rt, rep, WithClaims(cl), WithGracePeriod(5*time.Second), WithLogger(zerolog.New(&logs)))
	runWorker(t, w)

	l := &queueLease{src: src, job: job("r1"), acked: make(chan struct{}), seq: 7}
	src.leases <- l
	<-started
	again := &queueLease{src: src, job: job("r1"), acked: make(chan struct{}), seq: 7}
	src.leases <- again
	// Handled: left to the attempt here (before the fix, a second attempt
	// started instead, and this never came).
	waitFor(t, func() bool { return strings.Contains(logs.String(), "left to the attempt here") })
	if got := w.Running(); len(got) != 1 || got[0] != "r1" {
		t.Fatalf("running %v, want r1", got)
	}
	close(finish)
	<-l.acked
	mu.Lock()
	defer mu.Unlock()
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if runs != 1 {
		t.Fatalf("ran %d attempts, want 1", runs)
	}
	for _, ev := range rep.events {
		if ev.Attempt != 1 || ev.StopCode == jobs.StopWorkerLost {
			t.Fatalf("events %+v: want only attempt 1's, none WorkerLost", rep.events)
		}
	}
	if c := cl.get("r1"); c.Attempt != 1 {
		t.Fatalf("claim %+v, want attempt 1", c)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !ok(); {
		if time.Now().After(end) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recordedClaims is queuedClaims whose server records runs (RunRecords).
type recordedClaims struct {
	*queuedClaims
	status  jobs.Status
	attempt int
	err     error
	asked   int
}

func (c *recordedClaims) RunState(context.Context, string) (jobs.Status, int, error) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	c.asked++
	return c.status, c.attempt, c.err
}

// A job queued longer than the claims and the stop requests are kept
// runs only if the server still records its run as waiting for it: a run
// stopped (or ended, or deleted) more than a week ago finds no claim and
// no cancel mark, and must not start.
func TestOldJobAsksTheServer(t *testing.T) {
	week := 8 * 24 * time.Hour
	for _, c := range []struct {
		name     string
		age      time.Duration
		status   jobs.Status
		attempt  int
		err      error
		wantRun  bool
		wantAsk  bool
		wantBack bool // handed back to be taken later
	}{
		{"young job: claims are trusted", time.Hour, jobs.StatusCanceled, 1, nil, true, false, false},
		{"old job of a stopped run", week, jobs.StatusCanceled, 1, nil, false, true, false},
		{"old job of a run that ended", week, jobs.StatusSucceeded, 1, nil, false, true, false},
		{"old job of a deleted run", week, "", 0, jobs.NotFound("run r: not found"), false, true, false},
		{"old job of an attempt since retried (the run waits for attempt 2's job)", week, jobs.StatusQueued, 2, nil, false, true, false},
		{"old job still awaited", week, jobs.StatusQueued, 1, nil, true, true, false},
		{"old job, no server to ask", week, "", 0, errors.New("nats: no responders"), false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := &recordedClaims{queuedClaims: newQueuedClaims(7), status: c.status, attempt: c.attempt, err: c.err}
			var mu sync.Mutex
			ran := false
			rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) {
				mu.Lock()
				ran = true
				mu.Unlock()
				return exited(0), nil
			})
			rep := &fakeReporter{}
			src := &queueSource{leases: make(chan *queueLease, 1)}
			w := New("w1", "default", src, rt, rep, WithClaims(cl))
			l := &queueLease{src: src, job: job("r"), acked: make(chan struct{}), seq: 7, stored: time.Now().Add(-c.age)}
			stop := runWorker(t, w)
			src.leases <- l
			if c.wantBack {
				waitFor(t, func() bool { return src.nakCount() > 0 })
			} else {
				<-l.acked
			}
			stop()
			mu.Lock()
			defer mu.Unlock()
			if ran != c.wantRun || (cl.asked > 0) != c.wantAsk {
				t.Fatalf("ran %v (want %v), asked the server %d times (want asked: %v)", ran, c.wantRun, cl.asked, c.wantAsk)
			}
			if !c.wantRun && len(rep.events) > 0 {
				t.Fatalf("events for a job that did not run: %+v", rep.events)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// flakyReporter refuses events for a while, as a reports stream that
// cannot store (a leader election).
type flakyReporter struct {
	fakeReporter
	until time.Time
}

func (r *flakyReporter) PublishEvents(ctx context.Context, evs ...*jobs.Event) error {
	if time.Now().Before(r.until) {
		return errors.New("nats: no response from stream")
	}
	return r.fakeReporter.PublishEvents(ctx, evs...)
}

// renewCounting is a queueLease that counts its renewals.
type renewCounting struct {
	*queueLease
	mu      sync.Mutex
	renewed int
}

func (l *renewCounting) InProgress() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.renewed++
	return nil
}

// leaseSource hands out its leases, then waits.
type leaseSource struct{ leases chan Lease }

func (s *leaseSource) Next(ctx context.Context) (Lease, error) {
	select {
	case l := <-s.leases:
		return l, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// While a worker tells of the worker lost before it (which takes as long
// as reports cannot be stored), it renews the job's lease: lapsed, the
// lease would hand the job to a third worker, and both would run it.
func TestLeaseRenewedWhileTellingOfALostWorker(t *testing.T) {
	cl := newQueuedClaims(7)
	cl.store(t, "r", claim{Attempt: 1, Worker: "gone", Job: 1, Seq: 7})
	down := time.Second
	rep := &flakyReporter{until: time.Now().Add(down)}
	rt := fakeRuntime(func(context.Context, *Task) (*Result, error) { return exited(0), nil })
	src := &leaseSource{leases: make(chan Lease, 1)}
	w := New("w1", "default", src, rt, rep, WithClaims(cl), WithLeaseRenewal(50*time.Millisecond))
	inner := &queueLease{job: job("r"), acked: make(chan struct{}), seq: 7}
	l := &renewCounting{queueLease: inner}
	runWorker(t, w)
	src.leases <- l
	<-inner.acked
	l.mu.Lock()
	defer l.mu.Unlock()
	// About one renewal every 50 ms while reports were refused.
	if l.renewed < int(down/(50*time.Millisecond))/2 {
		t.Fatalf("%d renewals in the %s reports were refused", l.renewed, down)
	}
	if ev := rep.last(); ev.Attempt != 2 || ev.Status != jobs.StatusSucceeded {
		t.Fatalf("last event %+v, want attempt 2 SUCCEEDED", ev)
	}
}

// A job redelivered because its worker went after storing a failed end
// (before its ack) is not run as a lost attempt when the server answered
// that end with a retry still waiting out its backoff; a job whose worker
// was lost mid-run still is.
func TestRedeliveryAfterARetryWasQueued(t *testing.T) {
	for _, c := range []struct {
		name       string
		status     jobs.Status
		jobAttempt int
		wantRun    int // the attempt run; 0: none
	}{
		{"retry 2 waits for its backoff", jobs.StatusQueued, 2, 0},
		{"attempt 1 lost mid-run", jobs.StatusRunning, 1, 2},
		{"attempt 1 lost, its redelivery queued", jobs.StatusQueued, 1, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := &recordedClaims{queuedClaims: newQueuedClaims(7), status: c.status, attempt: c.jobAttempt}
			cl.store(t, "r", claim{Attempt: 1, Worker: "gone", Job: 1, Seq: 7})
			evs, ran, _ := deliverOnce(t, job("r"), 7, nil, cl)
			if ran != c.wantRun {
				t.Fatalf("ran attempt %d, want %d; events %+v", ran, c.wantRun, evs)
			}
			if c.wantRun == 0 && len(evs) != 0 {
				t.Fatalf("events %+v, want none", evs)
			}
		})
	}
}

// Without a server to ask, a lost worker's job still runs as the next
// attempt: recovering it needs only NATS.
func TestLostWorkersJobWithoutAServer(t *testing.T) {
	cl := &recordedClaims{queuedClaims: newQueuedClaims(7), err: errors.New("nats: no responders available for request")}
	cl.store(t, "r", claim{Attempt: 1, Worker: "gone", Job: 1, Seq: 7})
	if _, ran, _ := deliverOnce(t, job("r"), 7, nil, cl); ran != 2 {
		t.Fatalf("ran attempt %d, want 2", ran)
	}
}

// runWorker runs w until the test ends or stop is called, and waits for it.
func runWorker(t *testing.T, w *Worker) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}
