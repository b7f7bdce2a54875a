package server

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// newJetStream points e at a NATS server of its own, fresh, as a store
// restored onto a new data directory finds it.
func (e *lostEnv) newJetStream() {
	e.t.Helper()
	e.nc = testNATS(e.t)
	// The server over it stops before it closes (cleanups run last
	// first): a server whose connection closes under it fails.
	e.t.Cleanup(func() { e.stopServer() })
	q, err := queue.New(e.nc, queue.WithAckWait(testAckWait))
	if err != nil {
		e.t.Fatal(err)
	}
	e.q = q
}

// waitPublished waits until the store marks every queued run's job
// published (Submit marks it in the background).
func (e *lostEnv) waitPublished() {
	e.t.Helper()
	e.waitFor("every job marked published", func() bool {
		un, err := e.db.Unpublished(e.ctx)
		return err == nil && len(un) == 0
	})
}

// jobsQueued is how many job messages the jobs stream holds.
func (e *lostEnv) jobsQueued() uint64 {
	e.t.Helper()
	st, err := e.q.JetStream().Stream(e.ctx, queue.StreamJobs)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

// TestRestoreOntoNewJetStream: a store whose QUEUED runs' jobs were
// published is started beside a new JetStream (a restore onto a new data
// directory). The server publishes those jobs again, and only those: the
// run waiting for another stays waiting until it is released, the run a
// worker held is not queued; a worker then runs them. A crash of the
// server right after it recorded the new stream (its runs unpublished
// again, nothing published yet) is the second case: the next start
// publishes them. A restart on the same JetStream publishes nothing.
func TestRestoreOntoNewJetStream(t *testing.T) {
	for _, crashAfterAdopt := range []bool{false, true} {
		t.Run(fmt.Sprintf("crashAfterAdopt=%v", crashAfterAdopt), func(t *testing.T) {
			e := startLostEnv(t)
			running := e.submit()
			e.takeAsLostWorker(running.RunID, true)
			queued := e.submit()
			waiting, err := e.s.Submit(e.ctx, &jobs.SubmitRequest{DependsOn: []jobs.RunDependency{{RunID: queued.RunID}},
				TaskDefinition: json.RawMessage(`{"family":"after","containerDefinitions":[{"name":"main","image":"after:1","essential":true}]}`)})
			if err != nil {
				t.Fatal(err)
			}
			if !waiting.Waiting() {
				t.Fatalf("run %s does not wait: %s %q", waiting.RunID, waiting.Status, waiting.StatusReason)
			}
			e.waitPublished()
			e.stopServer()

			e.newJetStream()
			if crashAfterAdopt {
				if err := e.q.EnsureStreams(e.ctx); err != nil {
					t.Fatal(err)
				}
				id, _, err := e.q.JobsStream(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n, err := e.db.AdoptJobsStream(e.ctx, id, false); err != nil || n != 1 {
					t.Fatalf("adopted the new stream by hand: %d runs requeued, %v; want 1", n, err)
				}
			}
			e.startServer() // republishes before it answers
			if n := e.jobsQueued(); n != 1 {
				t.Fatalf("%d jobs queued on the new JetStream, want the queued run's alone", n)
			}
			e.sweep()
			if n := e.jobsPublished(); n != 1 {
				t.Fatalf("%d jobs published after a sweep, want 1", n)
			}

			e.startWorker("w2")
			for _, id := range []string{queued.RunID, waiting.RunID} {
				got := e.waitRun(id, "succeeded", func(r *jobs.Run) bool { return r.Status.Terminal() })
				if got.Status != jobs.StatusSucceeded || len(got.Attempts) != 1 {
					t.Fatalf("run %s ended %s with attempts %+v", id, got.Status, got.Attempts)
				}
			}
			if got := e.get(running.RunID); got.Status != jobs.StatusRunning || len(got.Attempts) != 1 {
				t.Fatalf("the run w1 held: %s, attempts %+v; want RUNNING, left to its worker", got.Status, got.Attempts)
			}
			if ran := e.ranAttempts(); !slices.Equal(ran, []int{1, 1}) {
				t.Fatalf("attempts run: %v, want [1 1]", ran)
			}

			// The same JetStream at the next start: nothing again.
			published := e.jobsPublished()
			e.stopServer()
			e.startServer()
			e.sweep()
			if n := e.jobsPublished(); n != published {
				t.Fatalf("%d jobs published after a restart on the same JetStream, want %d", n, published)
			}
		})
	}
}

// TestJobsStreamDeletedUnderTheServer: GANTRY_JOBS is deleted by hand
// while the server runs. The next sweep makes it again and publishes the
// queued run's job once; a worker runs it.
func TestJobsStreamDeletedUnderTheServer(t *testing.T) {
	e := startLostEnv(t)
	r := e.submit()
	e.waitPublished()
	if err := e.q.JetStream().DeleteStream(e.ctx, queue.StreamJobs); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	if n := e.jobsQueued(); n != 1 {
		t.Fatalf("%d jobs queued after the sweep, want 1", n)
	}
	e.sweep()
	if n := e.jobsPublished(); n != 1 {
		t.Fatalf("%d jobs published after another sweep, want 1", n)
	}
	e.startWorker("w2")
	got := e.waitRun(r.RunID, "ended", func(r *jobs.Run) bool { return r.Status.Terminal() })
	if got.Status != jobs.StatusSucceeded || len(got.Attempts) != 1 {
		t.Fatalf("run ended %s with attempts %+v", got.Status, got.Attempts)
	}
}

// waitFor polls ok until it holds.
func (e *lostEnv) waitFor(what string, ok func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("never %s", what)
		}
	}
}
