package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// TestLogsOfARunThatNeverStarted: gantry logs of a run stopped while
// queued, which no container of ever ran, prints nothing, says on stderr
// why there is no log, and exits 0 as for any run; so with --attempt and
// --tail.
func TestLogsOfARunThatNeverStarted(t *testing.T) {
	b := startBoundedLogs(t)
	id := b.submit() // no worker takes it
	if _, err := b.c.Stop(b.ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r, err := b.c.Get(b.ctx, id); err == nil && r.Status == jobs.StatusCanceled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run was not canceled within 10s")
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "gantry: run " + id + " was canceled"},
		{[]string{"--attempt", "1"}, "gantry: attempt 1 of run " + id + " was canceled"},
		{[]string{"--tail", "10"}, "gantry: run " + id + " was canceled"},
	} {
		var out, errOut bytes.Buffer
		if err := b.logsCmd(b.ctx, &out, &errOut, append([]string{id}, tc.args...)...); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		stderr := errOut.String()
		if out.Len() != 0 || !strings.HasPrefix(stderr, tc.want) || !strings.HasSuffix(stderr, " before any container started: it has no log\n") ||
			strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: stdout %q, stderr %q; want no stdout, and on stderr one line %q... before any container started: it has no log",
				tc.args, out.String(), stderr, tc.want)
		}
	}
}

// TestLogsOfAQueuedRun: gantry logs of a run still QUEUED, which no
// container of has started, prints nothing, says on stderr that it has no
// log yet and that -f waits for it, and exits 0; with -f it says it
// waits, and follows until the run ends (here, stopped while queued).
func TestLogsOfAQueuedRun(t *testing.T) {
	b := startBoundedLogs(t)
	id := b.submit() // no worker takes it
	var out, errOut bytes.Buffer
	if err := b.logsCmd(b.ctx, &out, &errOut, id); err != nil {
		t.Fatal(err)
	}
	want := "gantry: run " + id + " is QUEUED, no container has started: it has no log yet (gantry logs -f " + id + " waits for it)\n"
	if out.Len() != 0 || errOut.String() != want {
		t.Errorf("stdout %q, stderr %q; want no stdout, and on stderr %q", out.String(), errOut.String(), want)
	}

	var fout bytes.Buffer
	var ferr syncBuffer
	done := make(chan error, 1)
	go func() { done <- b.logsCmd(b.ctx, &fout, &ferr, "-f", id) }()
	waiting := "gantry: run " + id + " is QUEUED, no container has started: waiting for its log\n"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(ferr.String(), waiting); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gantry logs -f: stderr %q within 10s, want %q", ferr.String(), waiting)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("gantry logs -f of a queued run returned before the run ended: %v", err)
	default:
	}
	if _, err := b.c.Stop(b.ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gantry logs -f did not end within 10s of the run's stop")
	}
	if got := ferr.String(); !strings.HasPrefix(got, waiting) || !strings.HasSuffix(got, " before any container started: it has no log\n") || fout.Len() != 0 {
		t.Errorf("gantry logs -f: stdout %q, stderr %q; want no stdout, and on stderr %q then that it was canceled before any container started", fout.String(), got, waiting)
	}
}

// TestLogsNotStartedYet: which runs and attempts are said to have no log
// yet because they have not ended and none of their containers started.
func TestLogsNotStartedYet(t *testing.T) {
	at := time.Now()
	r := func(status jobs.Status, attempts ...jobs.Status) *jobs.Run {
		run := &jobs.Run{RunID: "r1", Status: status}
		for i, st := range attempts {
			a := jobs.Attempt{Attempt: i + 1, Status: st}
			if st != jobs.StatusQueued && st != jobs.StatusStarting && st != jobs.StatusCanceled {
				a.StartedAt = &at
				run.StartedAt = &at
			}
			run.Attempts = append(run.Attempts, a)
		}
		return run
	}
	for _, tc := range []struct {
		name    string
		run     *jobs.Run
		attempt int
		want    string
	}{
		{"queued", r(jobs.StatusQueued), 0, "run r1 is QUEUED, no container has started"},
		{"queued with an attempt", r(jobs.StatusQueued, jobs.StatusQueued), 0, "run r1 is QUEUED, no container has started"},
		{"pulling", r(jobs.StatusStarting, jobs.StatusStarting), 0, "run r1 is STARTING, no container has started"},
		{"its attempt", r(jobs.StatusQueued, jobs.StatusQueued), 1, "attempt 1 of run r1 is QUEUED, no container has started"},
		{"running", r(jobs.StatusRunning, jobs.StatusRunning), 0, ""},
		{"a retry after one that ran", r(jobs.StatusQueued, jobs.StatusFailed, jobs.StatusQueued), 0, ""},
		{"the retry itself", r(jobs.StatusQueued, jobs.StatusFailed, jobs.StatusQueued), 2, "attempt 2 of run r1 is QUEUED, no container has started"},
		{"canceled queued", r(jobs.StatusCanceled, jobs.StatusCanceled), 0, ""},
		{"no such attempt", r(jobs.StatusQueued), 3, ""},
	} {
		if got := notStartedYet(tc.run, tc.attempt); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestLogsNoContainerStarted: which runs and attempts are said to have
// no log because none of their containers started.
func TestLogsNoContainerStarted(t *testing.T) {
	at := time.Now()
	r := func(status jobs.Status, reason string, started ...bool) *jobs.Run {
		run := &jobs.Run{RunID: "r1", Status: status, StoppedReason: reason}
		for i, s := range started {
			a := jobs.Attempt{Attempt: i + 1, Status: jobs.StatusFailed, StoppedReason: "attempt reason"}
			if s {
				a.StartedAt = &at
				run.StartedAt = &at
			}
			run.Attempts = append(run.Attempts, a)
		}
		return run
	}
	for _, tc := range []struct {
		name    string
		run     *jobs.Run
		attempt int
		want    string
	}{
		{"queued", r(jobs.StatusQueued, "", false), 0, ""},
		{"canceled queued", r(jobs.StatusCanceled, "", false), 0, "run r1 was canceled before any container started: it has no log"},
		{"pull failed", r(jobs.StatusFailed, "CannotPullContainerError: no image i", false), 0,
			"run r1 failed (CannotPullContainerError: no image i) before any container started: it has no log"},
		{"ran", r(jobs.StatusSucceeded, "", true), 0, ""},
		{"a retry ran", r(jobs.StatusFailed, "", false, true), 0, ""},
		{"its first attempt did not", r(jobs.StatusFailed, "", false, true), 1, "attempt 1 of run r1 failed (attempt reason) before any container started: it has no log"},
		{"no such attempt", r(jobs.StatusFailed, "", false), 3, ""},
	} {
		if got := noContainerStarted(tc.run, tc.attempt); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// endAsRan ends the queued run id as a worker that ran it reports it, at the
// time at (RUNNING, then SUCCEEDED without a log line), and waits until
// the server has applied it: a run that ended without a line, whose
// containers started.
func endAsRan(t *testing.T, ctx context.Context, c *client.Client, q *queue.Queue, id string, at time.Time) {
	t.Helper()
	zero := 0
	for i, st := range []jobs.Status{jobs.StatusRunning, jobs.StatusSucceeded} {
		ev := &jobs.Event{RunID: id, Attempt: 1, Seq: i + 1, Status: st, Source: jobs.SourceWorker, Worker: "w-test", Time: at}
		if st.Terminal() {
			ev.ExitCode = &zero
		}
		if err := q.Report(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if r, err := c.Wait(wctx, id); err != nil || r.Status != jobs.StatusSucceeded || r.StartedAt == nil {
		t.Fatalf("run %s did not end as run: %+v, %v", id, r, err)
	}
}
