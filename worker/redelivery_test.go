package worker

import (
	"context"
	"sync"
	"testing"
	"time"

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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	first := &queueLease{src: src, job: job("r1"), acked: make(chan struct{}), seq: 7}
	src.leases <- first
	<-first.acked
	retry := job("r1")
	retry.Attempt = 2
	l2 := &queueLease{src: src, job: retry, acked: make(chan struct{}), seq: 8}
	src.leases <- l2
	<-second
	close(release) // attempt 1's clean-up ends while attempt 2 runs
	waitFor(t, func() bool { return len(w.Running()) == 1 })
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
	w := New("w1", "default", src, rt, rep, WithClaims(cl), WithGracePeriod(5*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	l := &queueLease{src: src, job: job("r1"), acked: make(chan struct{}), seq: 7}
	src.leases <- l
	<-started
	again := &queueLease{src: src, job: job("r1"), acked: make(chan struct{}), seq: 7}
	src.leases <- again
	time.Sleep(100 * time.Millisecond) // the redelivery is handled by now
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
