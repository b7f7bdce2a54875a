package jobs

import (
	"strings"
	"testing"
)

// cutOff plays the race of a worker cut off from NATS for longer than its
// lease: w1 runs attempt 1, the queue hands its job to w2, whose claim
// finds w1 lost. The events come in the order given.
func cutOff(t *testing.T, r *Run, order ...Event) {
	t.Helper()
	for _, e := range order {
		r.Apply(e)
	}
}

func lateEvents() (w1End, lost, w2Start, w2Run, w2End Event) {
	w1End = ev(1, 2, StatusSucceeded)
	w1End.ExitCode, w1End.Source = intp(0), SourceWorker
	lost = ev(1, 1<<30, StatusFailed)
	lost.StopCode, lost.Redelivered, lost.Source = StopWorkerLost, true, SourceWorker
	lost.StoppedReason = "worker w1 stopped renewing the lease (killed or cut off); the job went to worker w2 as attempt 2"
	w2Start, w2Run = ev(2, 1, StatusStarting), ev(2, 2, StatusRunning)
	w2End = ev(2, 3, StatusFailed)
	w2End.ExitCode, w2End.StopCode, w2End.StoppedReason = intp(7), StopEssentialExited, "Essential container in task exited"
	for _, e := range []*Event{&w2Start, &w2Run, &w2End} {
		e.Worker, e.Source = "w2", SourceWorker
	}
	return w1End, lost, w2Start, w2Run, w2End
}

// TestAttemptAfterTheEndIsRecorded: w1's end comes first and ends the run;
// w2's report of w1's loss then changes nothing, but the attempt w2 runs is
// recorded after the end, saying why, without changing the run's status,
// exit code, worker or current attempt, nor counting as a try.
func TestAttemptAfterTheEndIsRecorded(t *testing.T) {
	w1End, lost, w2Start, w2Run, w2End := lateEvents()
	r := newRun(0)
	cutOff(t, r, ev(1, 1, StatusRunning), w1End)
	if r.Apply(lost) {
		t.Fatalf("w2's report of w1's loss after w1's end changed the run: %+v", r.Attempts)
	}
	for i, e := range []Event{w2Start, w2Run, w2End} {
		if !r.Apply(e) {
			t.Fatalf("event %d of the attempt after the end changed nothing: %+v", i, r.Attempts)
		}
	}
	if len(r.Attempts) != 2 {
		t.Fatalf("%d attempts, want 2: %+v", len(r.Attempts), r.Attempts)
	}
	late := r.Attempts[1]
	if late.Attempt != 2 || late.Worker != "w2" || late.Status != StatusFailed || late.ExitCode == nil || *late.ExitCode != 7 ||
		late.StartedAt == nil || late.FinishedAt == nil || late.StopCode != StopEssentialExited {
		t.Fatalf("attempt after the end: %+v", late)
	}
	for _, want := range []string{"ran after the run had ended", "worker w1's lease on the job of attempt 1 ran out",
		"to worker w2 as attempt 2", "attempt 1's end"} {
		if !strings.Contains(late.AfterEnd, want) {
			t.Errorf("afterEnd %q does not say %q", late.AfterEnd, want)
		}
	}
	if r.Status != StatusSucceeded || r.ExitCode == nil || *r.ExitCode != 0 || r.Worker != "w1" || r.StopCode != "" {
		t.Fatalf("the run changed: %s exit %v on %s %s", r.Status, r.ExitCode, r.Worker, r.StopCode)
	}
	if c := r.Current(); c == nil || c.Attempt != 1 {
		t.Fatalf("current attempt %+v, want 1, which the run ended with", c)
	}
	if n := r.Tries(); n != 1 {
		t.Fatalf("%d tries, want 1: the attempt after the end is none", n)
	}
	// Replayed (a batch redelivered to the server), they change nothing.
	for _, e := range []Event{w2Start, w2Run, w2End, lost, w1End} {
		if r.Apply(e) {
			t.Fatalf("replayed event %+v changed the run: %+v", e, r.Attempts)
		}
	}
	if len(r.Attempts) != 2 {
		t.Fatalf("%d attempts after the replay, want 2", len(r.Attempts))
	}
}

// TestAttemptAfterTheEndKeepsTheRunsOwnOrder: the same events with w2's
// report of the loss first are the loss the README describes: attempt 1
// WorkerLost, attempt 2 the run's, w1's late end ignored. Events of an
// attempt beyond the next, or from the server, record nothing.
func TestAttemptAfterTheEndKeepsTheRunsOwnOrder(t *testing.T) {
	w1End, lost, w2Start, w2Run, w2End := lateEvents()
	r := newRun(0)
	cutOff(t, r, ev(1, 1, StatusRunning), lost, w1End, w2Start, w2Run, w2End)
	if r.Status != StatusFailed || len(r.Attempts) != 2 || r.Attempts[0].StopCode != StopWorkerLost ||
		r.Attempts[1].AfterEnd != "" || r.Current().Attempt != 2 || *r.ExitCode != 7 {
		t.Fatalf("run %s exit %v, attempts %+v", r.Status, r.ExitCode, r.Attempts)
	}

	r = newRun(0)
	cutOff(t, r, ev(1, 1, StatusRunning), w1End)
	skip := ev(3, 1, StatusStarting)
	skip.Source = SourceWorker
	server := w2Start
	server.Source = SourceServer
	if r.Apply(skip) || r.Apply(server) || len(r.Attempts) != 1 {
		t.Fatalf("an attempt beyond the next, or a server's event, was recorded: %+v", r.Attempts)
	}
}

// TestAttemptAfterARetryEndIsTheRetry: w1's end is a failure the strategy
// retries: the run waits for attempt 2, and w2's run of the job is that
// attempt (its job, published after the backoff, finds w2's claim and is
// not run again).
func TestAttemptAfterARetryEndIsTheRetry(t *testing.T) {
	_, lost, w2Start, w2Run, _ := lateEvents()
	r := newRun(2)
	fail := ev(1, 2, StatusFailed)
	fail.ExitCode, fail.StopCode, fail.Source = intp(1), StopEssentialExited, SourceWorker
	cutOff(t, r, ev(1, 1, StatusRunning), fail, lost, w2Start, w2Run)
	if r.Status != StatusRunning || len(r.Attempts) != 2 || r.Attempts[1].AfterEnd != "" || r.Worker != "w2" {
		t.Fatalf("run %s on %s, attempts %+v", r.Status, r.Worker, r.Attempts)
	}
}

// TestAttemptAfterACancelWhileQueued: a run stopped while queued has an
// attempt no worker reported; a worker that runs the next one anyway is
// recorded, its reason not naming a worker that never was.
func TestAttemptAfterACancelWhileQueued(t *testing.T) {
	r := newRun(0)
	r.Cancel(ev(1, 1, StatusQueued).Time, "Stopped by user")
	start := ev(2, 1, StatusStarting)
	start.Worker, start.Source = "w2", SourceWorker
	if !r.Apply(start) || len(r.Attempts) != 2 || r.Status != StatusCanceled {
		t.Fatalf("run %s, attempts %+v", r.Status, r.Attempts)
	}
	if a := r.Attempts[1].AfterEnd; !strings.Contains(a, "delivered its job to worker w2 after attempt 1 had ended the run") || strings.Contains(a, "lease") {
		t.Fatalf("afterEnd %q", a)
	}
}
