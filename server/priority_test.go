package server

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// lastJob returns the last job queued on subject, nil if none.
func (e *apiEnv) lastJob(subject string) *jobs.Job {
	e.t.Helper()
	js, err := jetstream.New(e.op)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := context.Background()
	st, err := js.Stream(ctx, queue.StreamJobs)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil
	}
	var j jobs.Job
	if err := json.Unmarshal(m.Data, &j); err != nil {
		e.t.Fatal(err)
	}
	return &j
}

// TestRunPriority: a submission's priority is the run's, its job goes to
// the priority's subject, and a retry's job goes there too; bad values
// are refused naming the field.
func TestRunPriority(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var normal jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &normal)
	if normal.Priority != jobs.PriorityNormal {
		t.Errorf("default priority %q, want normal", normal.Priority)
	}
	if j := e.lastJob("gantry.jobs.default"); j == nil || j.RunID != normal.RunID || j.Priority != "" {
		t.Errorf("normal job on gantry.jobs.default: %+v", j)
	}
	var high jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","priority":"high",
		"retryStrategy":{"attempts":2,"backoff":{"initialSeconds":0}}}`, &high)
	if high.Priority != jobs.PriorityHigh {
		t.Fatalf("priority %q, want high", high.Priority)
	}
	var got jobs.Run
	e.ok("gantry.api.runs.get", `{"runId":"`+high.RunID+`"}`, &got)
	if got.Priority != jobs.PriorityHigh {
		t.Errorf("runs.get: priority %q, want high", got.Priority)
	}
	if j := e.lastJob("gantry.jobs.default.p.high"); j == nil || j.RunID != high.RunID || j.Attempt != 1 {
		t.Fatalf("high job: %+v", j)
	}
	e.fail(high.RunID)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if j := e.lastJob("gantry.jobs.default.p.high"); j != nil && j.RunID == high.RunID && j.Attempt == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the retry's job was not queued as high within 10s")
		}
	}
	if j := e.lastJob("gantry.jobs.default"); j == nil || j.RunID != normal.RunID {
		t.Errorf("the retry's job reached the normal queue: %+v", j)
	}

	m := e.req(e.op, "gantry.api.runs.submit", `{"taskDefinition":"hello","priority":"urgent"}`)
	if er := apiError(t, m); er.Code != jobs.CodeInvalidArgument || !strings.Contains(er.Message, `priority: "urgent": want high, normal or low`) {
		t.Errorf("bad priority: %+v", er)
	}
}

// TestPipelinePriority: a stage's priority wins over its pipeline's; a
// backfill's or a run's given priority over both; bad values are refused
// naming the field.
func TestPipelinePriority(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(`name: prio
priority: high
schedule: {cron: "0 * * * *", suspend: true}
stages:
  - {name: a, taskDefinition: hello}
  - {name: b, taskDefinition: hello, priority: low}
`)
	stageRuns := func(pr *jobs.PipelineRun) map[string]jobs.Priority {
		out := map[string]jobs.Priority{}
		for _, name := range []string{"a", "b"} {
			id := e.stageRunning(pr.PipelineRunID, name)
			var r jobs.Run
			e.ok("gantry.api.runs.get", `{"runId":"`+id+`"}`, &r)
			out[name] = r.Priority
		}
		return out
	}
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"prio"}`, &pr)
	if got := stageRuns(&pr); got["a"] != jobs.PriorityHigh || got["b"] != jobs.PriorityLow {
		t.Errorf("pipeline run: stage priorities %v, want a high (the pipeline's), b low (its own)", got)
	}
	e.ok("gantry.api.pipelines.run", `{"name":"prio","priority":"normal"}`, &pr)
	if got := stageRuns(&pr); got["a"] != jobs.PriorityNormal || got["b"] != jobs.PriorityNormal {
		t.Errorf("pipeline run --priority normal: stage priorities %v, want normal", got)
	}
	var prs []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"prio","from":"2026-01-01T00:00:00Z","to":"2026-01-01T00:00:00Z","priority":"low"}`, &prs)
	if len(prs) != 1 || prs[0].Priority != jobs.PriorityLow {
		t.Fatalf("backfill: %+v", prs)
	}
	if got := stageRuns(&prs[0]); got["a"] != jobs.PriorityLow || got["b"] != jobs.PriorityLow {
		t.Errorf("backfill --priority low: stage priorities %v, want low", got)
	}
	for _, tc := range []struct{ subject, body string }{
		{"gantry.api.pipelines.run", `{"name":"prio","priority":"top"}`},
		{"gantry.api.pipelines.backfill", `{"name":"prio","from":"2026-01-01T00:00:00Z","to":"2026-01-01T00:00:00Z","priority":"top"}`},
	} {
		if er := apiError(t, e.req(e.op, tc.subject, tc.body)); er.Code != jobs.CodeInvalidArgument || !strings.Contains(er.Message, `priority: "top"`) {
			t.Errorf("%s with a bad priority: %+v", tc.subject, er)
		}
	}
}
