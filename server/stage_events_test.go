package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// TestStageRunEventsNameTheirPipeline: every event the server publishes
// for a stage's run names the pipeline besides the pipeline run and the
// stage: QUEUED when the stage submits it, RUNNING from its worker, QUEUED
// again for a retry, the end; and so do the runs of a retried pipeline
// run. gantry events --pipeline filters on it, with no lookup that a
// submit-only user may not make.
func TestStageRunEventsNameTheirPipeline(t *testing.T) {
	e := startAll(t)
	evs := watchServerEvents(t, e.op)
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
			var got []string
			for _, ev := range evs.of(run) {
				if ev.Status == status && ev.Attempt == attempt {
					return
				}
				got = append(got, fmt.Sprintf("%s/%d", ev.Status, ev.Attempt))
			}
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

	for _, run := range []string{a, again} {
		for _, ev := range evs.of(run) {
			if ev.Pipeline != "named" || ev.PipelineRunID != pr.PipelineRunID || ev.Stage != "a" {
				t.Errorf("run %s's %s event (attempt %d): pipeline %q, pipelineRunId %q, stage %q; want named, %s, a",
					run, ev.Status, ev.Attempt, ev.Pipeline, ev.PipelineRunID, ev.Stage, pr.PipelineRunID)
			}
		}
	}
}

// TestArrayStageRunEventsCarryTheirIndex: the runs of a pipeline's array
// stage (arraySize) are told with their index besides their stage, as
// their run's spec.stage has it: on every event the server publishes
// (gantry events) and in the body of a webhook's POST of their end, its
// summary too; and still with no arrayJobId nor arrayProperties, which
// are an array run's children's.
func TestArrayStageRunEventsCarryTheirIndex(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	evs := watchServerEvents(t, e.op)
	rc := newReceiver(t, 200)
	e.addHook(fmt.Sprintf(`{"name":"all","url":%q,"kind":"runs"}`, rc.URL))
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(`name: fan
stages:
  - {name: split, taskDefinition: hello, arraySize: 2}
`)
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"fan"}`, &pr)
	st := e.waitRun(pr.PipelineRunID, func(pr *jobs.PipelineRun) bool {
		st := pr.StageState("split")
		return st.Status == jobs.StatusRunning && len(st.Runs) == 2
	}).StageState("split")
	index := map[string]int{} // run id → its index, as the pipeline run has it
	for _, r := range st.Runs {
		if r.ArrayIndex == nil {
			t.Fatalf("stage split's run %s has no arrayIndex", r.RunID)
		}
		index[r.RunID] = *r.ArrayIndex
		e.endRun(r.RunID, jobs.StatusFailed, 3)
	}

	for _, got := range rc.wait(t, 2) {
		var ev map[string]any
		if err := json.Unmarshal(got.body, &ev); err != nil {
			t.Fatal(err)
		}
		id, _ := ev["id"].(string)
		i, ok := index[id]
		summary := fmt.Sprintf("stage split[%d] of fan", i)
		if !ok || ev["stage"] != "split" || ev["arrayIndex"] != float64(i) || ev["pipelineRunId"] != pr.PipelineRunID ||
			!strings.Contains(fmt.Sprint(ev["summary"]), summary) || ev["arrayJobId"] != nil || ev["arrayProperties"] != nil {
			t.Errorf("POST of run %s's end: want stage split, arrayIndex %d, %q in its summary, no arrayJobId nor arrayProperties:\n%s",
				id, i, summary, got.body)
		}
	}
	for id, i := range index {
		if len(evs.of(id)) == 0 {
			t.Errorf("run %s: no event seen", id)
		}
		for _, ev := range evs.of(id) {
			if ev.Stage != "split" || ev.ArrayIndex == nil || *ev.ArrayIndex != i {
				t.Errorf("run %s's %s event: stage %q, arrayIndex %v; want split, %d", id, ev.Status, ev.Stage, ev.ArrayIndex, i)
			}
		}
	}
}
