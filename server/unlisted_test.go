package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// beat stores a heartbeat of worker id listing runs (nil: a worker from
// before the list) and makes the server read the fleet again at once.
func (e *lostEnv) beat(id string, runs []string) {
	e.t.Helper()
	if err := e.q.Beat(e.ctx, jobs.WorkerInfo{ID: id, Cluster: "default", Runs: runs, State: jobs.WorkerActive,
		Capacity: jobs.Resources{Slots: 1}, Priorities: true, LastHeartbeat: e.now()}); err != nil {
		e.t.Fatal(err)
	}
	e.s.fleetMu.Lock()
	e.s.fleetCached = nil
	e.s.fleetMu.Unlock()
}

// waitReportsApplied waits until the server applied and acknowledged
// every report published so far (it holds an ack up to a second).
func (e *lostEnv) waitReportsApplied() {
	e.t.Helper()
	last, err := e.q.ReportsPosition(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitFor("every report applied", func() bool {
		ok, err := e.q.ReportsApplied(e.ctx, last)
		return err == nil && ok
	})
}

// grace is how long a run may go unlisted before it is taken for lost.
func (e *lostEnv) grace() { e.advance(testAckWait + queue.PresenceTTL) }

// TestUnlistedRunIsLost: w1 is live and its heartbeats stop listing the
// run it holds (it came back without its container, its job gone with the
// old JetStream). Within the grace nothing happens, and a heartbeat that
// lists the run again starts the count again (a run just taken); past it,
// the attempt is recorded WorkerLost, the reason saying so, not counted
// against the run's one attempt; the job is published once its
// redelivery did not come, and w2 runs it as attempt 2.
func TestUnlistedRunIsLost(t *testing.T) {
	e := startLostEnv(t)
	r := e.submit()
	e.takeAsLostWorker(r.RunID, true)
	e.waitReportsApplied() // w1's RUNNING: the guard of unapplied reports has no part here
	// The job went with the old JetStream; w1 comes back without it.
	if err := e.q.JetStream().DeleteStream(e.ctx, queue.StreamJobs); err != nil {
		t.Fatal(err)
	}

	e.beat("w1", []string{r.RunID})
	e.sweep()
	e.grace()
	e.sweep()
	e.beat("w1", []string{})
	e.sweep() // first seen unlisted
	e.beat("w1", []string{r.RunID})
	e.sweep() // listed again: forgotten
	e.beat("w1", []string{})
	e.grace()
	e.sweep() // unlisted again: a new count
	if got := e.get(r.RunID); got.Status != jobs.StatusRunning || len(got.Attempts) != 1 {
		t.Fatalf("within the grace: %s, attempts %+v; want RUNNING", got.Status, got.Attempts)
	}
	e.grace()
	e.sweep()
	got := e.get(r.RunID)
	a := got.Attempts[0]
	if got.Status != jobs.StatusQueued || len(got.Attempts) != 2 || !got.Attempts[1].Redelivery ||
		a.StopCode != jobs.StopWorkerLost || got.Tries() != 1 ||
		!strings.HasPrefix(a.StoppedReason, "worker w1 no longer runs it (restarted without its container?)") {
		t.Fatalf("past the grace: %s, attempts %+v", got.Status, got.Attempts)
	}
	e.sweep() // and once only
	if got := e.get(r.RunID); len(got.Attempts) != 2 {
		t.Fatalf("after another sweep: attempts %+v", got.Attempts)
	}

	e.advance(e.s.redeliveryGrace())
	e.sweep()
	if n := e.jobsQueued(); n != 1 {
		t.Fatalf("%d jobs queued after the redelivery's grace, want attempt 2's", n)
	}
	e.startWorker("w2")
	got = e.waitRun(r.RunID, "ended", func(r *jobs.Run) bool { return r.Status.Terminal() })
	if got.Status != jobs.StatusSucceeded || len(got.Attempts) != 2 || got.Attempts[1].Worker != "w2" {
		t.Fatalf("run ended %s with attempts %+v", got.Status, got.Attempts)
	}
	if ran := e.ranAttempts(); !slices.Equal(ran, []int{2}) {
		t.Fatalf("attempts run: %v, want [2]", ran)
	}
}

// TestUnlistedRunLeftAlone: runs that must not be taken for lost however
// long they go unlisted: one whose worker's heartbeats carry no list (a
// worker from before it), and one whose worker finished it and reported
// its end, not yet applied (the server was stopped meanwhile): the sweep
// waits for the reports before it, and the end, once applied, stands.
func TestUnlistedRunLeftAlone(t *testing.T) {
	t.Run("no list", func(t *testing.T) {
		e := startLostEnv(t)
		r := e.submit()
		e.takeAsLostWorker(r.RunID, true)
		e.waitReportsApplied()
		e.beat("w1", nil)
		e.sweep()
		e.grace()
		e.sweep()
		e.grace()
		e.sweep()
		if got := e.get(r.RunID); got.Status != jobs.StatusRunning || len(got.Attempts) != 1 {
			t.Fatalf("run %s, attempts %+v; want RUNNING", got.Status, got.Attempts)
		}
	})
	t.Run("end not applied yet", func(t *testing.T) {
		e := startLostEnv(t)
		r := e.submit()
		d, _ := e.takeAsLostWorker(r.RunID, true)
		e.stopServer() // no report is applied now; the sweep still runs by hand
		zero := 0
		if err := e.q.Report(e.ctx, &jobs.Event{RunID: r.RunID, Attempt: 1, Seq: 2, Status: jobs.StatusSucceeded,
			Source: jobs.SourceWorker, Worker: "w1", Time: e.now(), ExitCode: &zero}); err != nil {
			t.Fatal(err)
		}
		if err := d.Ack(e.ctx); err != nil {
			t.Fatal(err)
		}
		e.beat("w1", []string{})
		e.sweep()
		e.grace()
		e.sweep()
		e.grace()
		e.sweep()
		if got := e.get(r.RunID); got.Status != jobs.StatusRunning || len(got.Attempts) != 1 {
			t.Fatalf("with its end unapplied: %s, attempts %+v; want RUNNING until it is", got.Status, got.Attempts)
		}
		e.startServer()
		got := e.waitRun(r.RunID, "ended", func(r *jobs.Run) bool { return r.Status.Terminal() })
		e.beat("w1", []string{})
		e.sweep()
		e.grace()
		e.sweep()
		if got = e.get(r.RunID); got.Status != jobs.StatusSucceeded || len(got.Attempts) != 1 {
			t.Fatalf("run %s, attempts %+v; want SUCCEEDED by w1", got.Status, got.Attempts)
		}
	})
}
