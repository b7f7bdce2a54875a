package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
)

// TestStageRunEventsNameTheirPipeline: every event the server publishes
// for a stage's run names the pipeline besides the pipeline run and the
// stage: QUEUED when the stage submits it, RUNNING from its worker, QUEUED
// again for a retry, the end; and so do the runs of a retried pipeline
// run. gantry events --pipeline filters on it, with no lookup that a
// submit-only user may not make.
func TestStageRunEventsNameTheirPipeline(t *testing.T) {
	e := startAll(t)
	var (
		mu  sync.Mutex
		evs = map[string][]jobs.Event{}
	)
	sub, err := e.op.Subscribe("gantry.events.runs.>", func(m *nats.Msg) {
		var ev jobs.Event
		if json.Unmarshal(m.Data, &ev) != nil || ev.Source != jobs.SourceServer {
			return
		}
		mu.Lock()
		evs[ev.RunID] = append(evs[ev.RunID], ev)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(`name: named
stages:
  - {name: a, taskDefinition: hello, retryStrategy: {attempts: 2, backoff: {initialSeconds: 0}}}
  - {name: b, taskDefinition: hello, dependsOn: [a]}
`)
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"named"}`, &pr)
	a := e.stageRunning(pr.PipelineRunID, "a")
	// seen waits for the server's event of run with status and attempt.
	seen := func(run string, status jobs.Status, attempt int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			var got []string
			for _, ev := range evs[run] {
				if ev.Status == status && ev.Attempt == attempt {
					mu.Unlock()
					return
				}
				got = append(got, fmt.Sprintf("%s/%d", ev.Status, ev.Attempt))
			}
			mu.Unlock()
			if time.Now().After(deadline) {
				t.Fatalf("run %s's events %v; want one %s of attempt %d", run, got, status, attempt)
			}
		}
	}
	// report reports an attempt's event as its worker would, and waits
	// for the server's.
	report := func(attempt, seq int, s, want jobs.Status) {
		t.Helper()
		ev := &jobs.Event{RunID: a, Attempt: attempt, Seq: seq, Status: s, Source: jobs.SourceWorker, Worker: "w1", Time: time.Now().UTC()}
		if s.Terminal() {
			code := 3
			ev.ExitCode = &code
		}
		if err := e.queue().Report(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if s == jobs.StatusFailed && want == jobs.StatusQueued {
			attempt++ // retried
		}
		seen(a, want, attempt)
	}
	seen(a, jobs.StatusQueued, 1)
	report(1, 1, jobs.StatusRunning, jobs.StatusRunning)
	report(1, 2, jobs.StatusFailed, jobs.StatusQueued) // retried
	report(2, 1, jobs.StatusRunning, jobs.StatusRunning)
	report(2, 2, jobs.StatusFailed, jobs.StatusFailed) // the last try
	e.waitRun(pr.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusFailed })

	// A retry of the pipeline run queues a's run again, under a new id.
	e.ok("gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, pr.PipelineRunID), nil)
	again := e.stageRunning(pr.PipelineRunID, "a")
	if again == a {
		t.Fatalf("the retried stage kept its run %s", a)
	}
	seen(again, jobs.StatusQueued, 1)

	mu.Lock()
	defer mu.Unlock()
	for _, run := range []string{a, again} {
		for _, ev := range evs[run] {
			if ev.Pipeline != "named" || ev.PipelineRunID != pr.PipelineRunID || ev.Stage != "a" {
				t.Errorf("run %s's %s event (attempt %d): pipeline %q, pipelineRunId %q, stage %q; want named, %s, a",
					run, ev.Status, ev.Attempt, ev.Pipeline, ev.PipelineRunID, ev.Stage, pr.PipelineRunID)
			}
		}
	}
}
