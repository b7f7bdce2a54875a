package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// TestSubmitterReadsRunsWithoutSpec: NATS does not tell the server who
// asks, and run ids are on gantry.events.runs.>, so the submit role may
// not request runs.get, whose run carries its spec (an operator's task's
// command and environment); it reads runs.status, the same run without
// spec and idempotencyKey. A submission whose idempotency key finds
// another user's run gets that run without its spec, by request and by
// gantry.submit's Gantry-Reply-To.
func TestSubmitterReadsRunsWithoutSpec(t *testing.T) {
	e := startAPI(t)
	const (
		envSecret = "DB-PASSW0RD-of-the-0perat0r"
		cmdSecret = "--password=CMD-0F-THE-0PERAT0R"
		opKey     = "nightly-2026-12-05"
	)
	td := `{"family":"etl","containerDefinitions":[{"name":"main","image":"gantry/none:1",` +
		`"environment":[{"name":"DB_PASSWORD","value":"` + envSecret + `"}]}]}`
	var opRun jobs.Run
	e.ok("gantry.api.runs.submit", fmt.Sprintf(`{"taskDefinition":%s,"idempotencyKey":%q,`+
		`"overrides":{"containerOverrides":[{"name":"main","command":["etl",%q],"environment":[{"name":"MORE","value":%q}]}]}}`,
		td, opKey, cmdSecret, envSecret), &opRun)
	getBody := fmt.Sprintf(`{"runId":%q}`, opRun.RunID)
	// noSpec fails if data shows what the operator put in its run.
	noSpec := func(t *testing.T, what string, data []byte) {
		t.Helper()
		for _, s := range []string{envSecret, cmdSecret, `"spec"`} {
			if strings.Contains(string(data), s) {
				t.Errorf("%s shows %s: %s", what, s, data)
			}
		}
	}

	t.Run("runs.get refused", func(t *testing.T) {
		if m, err := e.sub.Request("gantry.api.runs.get", []byte(getBody), 300*time.Millisecond); err == nil {
			t.Fatalf("the submit-only user got a reply from runs.get: %s", m.Data)
		}
		select {
		case err := <-e.subErrs:
			if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"gantry.api.runs.get"`) {
				t.Fatalf("async error %v, want a permissions violation on gantry.api.runs.get", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no permissions violation reported")
		}
	})

	t.Run("runs.status", func(t *testing.T) {
		m := e.req(e.sub, "gantry.api.runs.status", getBody)
		if h := m.Header.Get(micro.ErrorCodeHeader); h != "" {
			t.Fatalf("error %s: %s", h, m.Data)
		}
		noSpec(t, "runs.status", m.Data)
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(m.Data, &fields); err != nil {
			t.Fatal(err)
		}
		// DESIGN.md's run JSON, all of it.
		for _, f := range []string{"runId", "status", "exitCode", "stopCode", "stoppedReason", "taskDefinition",
			"cluster", "worker", "createdAt", "startedAt", "finishedAt", "attempts", "containers"} {
			if _, ok := fields[f]; !ok {
				t.Errorf("runs.status has no %s: %s", f, m.Data)
			}
		}
		if _, ok := fields["idempotencyKey"]; ok || strings.Contains(string(m.Data), opKey) {
			t.Errorf("runs.status shows the idempotency key: %s", m.Data)
		}
		var r jobs.Run
		json.Unmarshal(m.Data, &r)
		if r.RunID != opRun.RunID || r.Status != jobs.StatusQueued || r.TaskDefinition != opRun.TaskDefinition ||
			r.Cluster != "default" || len(r.Attempts) != 1 || !r.CreatedAt.Equal(opRun.CreatedAt) {
			t.Errorf("runs.status %+v, want the run %+v but its spec", r, opRun)
		}
		got := apiError(t, e.req(e.sub, "gantry.api.runs.status", `{"runId":"01jzzzzzzzzzzzzzzzzzzzzzzz"}`))
		if got.Code != jobs.CodeNotFound {
			t.Errorf("unknown run: %s %s, want not_found", got.Code, got.Message)
		}
	})

	t.Run("the operator's runs.get", func(t *testing.T) {
		m := e.req(e.op, "gantry.api.runs.get", getBody)
		for _, s := range []string{envSecret, cmdSecret, `"spec"`, opKey} {
			if !strings.Contains(string(m.Data), s) {
				t.Errorf("runs.get as the operator lacks %s: %s", s, m.Data)
			}
		}
	})

	// The submitter's own submission, with the operator's key.
	mine := fmt.Sprintf(`{"taskDefinition":{"family":"mine","containerDefinitions":[{"name":"main","image":"gantry/none:1"}]},"idempotencyKey":%q}`, opKey)
	found := func(t *testing.T, what string, data []byte) {
		t.Helper()
		var r jobs.Run
		if err := json.Unmarshal(data, &r); err != nil || r.RunID != opRun.RunID {
			t.Fatalf("%s: %v, want the run %s: %s", what, err, opRun.RunID, data)
		}
		noSpec(t, what, data)
	}
	t.Run("runs.submit finding a run by its key", func(t *testing.T) {
		found(t, "runs.submit", e.req(e.sub, "gantry.api.runs.submit", mine).Data)
	})
	t.Run("gantry.submit finding a run by its key", func(t *testing.T) {
		inbox := e.sub.NewInbox()
		replies, err := e.sub.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg("gantry.submit")
		msg.Header.Set(queue.ReplyToHeader, inbox)
		msg.Data = []byte(mine)
		if err := e.sub.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		m, err := replies.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		found(t, "gantry.submit's reply", m.Data)
	})
	t.Run("a new run's reply has its spec", func(t *testing.T) {
		m := e.req(e.sub, "gantry.api.runs.submit", strings.Replace(mine, opKey, "mine-1", 1))
		var r jobs.Run
		if err := json.Unmarshal(m.Data, &r); err != nil || r.RunID == opRun.RunID || r.Spec.Task.Family != "mine" {
			t.Errorf("runs.submit of a new run: %v: %s", err, m.Data)
		}
	})

	t.Run("schema", func(t *testing.T) {
		var rep struct {
			Properties map[string]any
			Required   []string
		}
		json.Unmarshal([]byte(endpointMetadata("runs.status")[MetaResponseSchema]), &rep)
		_, spec := rep.Properties["spec"]
		_, key := rep.Properties["idempotencyKey"]
		if spec || key || rep.Properties["runId"] == nil || rep.Properties["containers"] == nil {
			t.Errorf("runs.status reply schema: properties %v, want a run's but spec and idempotencyKey", rep.Properties)
		}
		for _, r := range rep.Required {
			if r == "spec" {
				t.Errorf("runs.status reply schema requires spec: %v", rep.Required)
			}
		}
	})
}

// TestSubmitterReadsPipelineRunsWithoutSpec: the submit role may not
// request pipelines.get, whose run carries its spec (the stages' task
// definitions, commands and environment) and parameters; it reads
// pipelines.status, which `gantry logs pr-...` uses to find the stages'
// runs: the stages in DAG order with their runs, and nothing of what
// they run.
func TestSubmitterReadsPipelineRunsWithoutSpec(t *testing.T) {
	e := startAPI(t)
	const (
		paramSecret = "PARAM-0F-THE-0PERAT0R"
		envSecret   = "ENV-0F-THE-0PERAT0R"
	)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	// The file lists load first: DAG order is extract, transform, load.
	yaml := `name: secretive
parameters: {day: "` + paramSecret + `"}
stages:
  - name: load
    taskDefinition: hello
    dependsOn: [transform]
  - name: extract
    taskDefinition: hello
    arraySize: 2
    overrides: {containerOverrides: [{name: main, environment: [{name: DAY, value: "${day}"}, {name: KEY, value: "` + envSecret + `"}]}]}
  - name: transform
    taskDefinition: hello
    dependsOn: [extract]
`
	body, _ := json.Marshal(map[string][]byte{"data": []byte(yaml)})
	e.ok("gantry.api.pipelines.apply", string(body), nil)
	var started jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"secretive"}`, &started)
	ref := fmt.Sprintf(`{"pipelineRunId":%q}`, started.PipelineRunID)
	var full jobs.PipelineRun
	e.ok("gantry.api.pipelines.get", ref, &full)

	t.Run("pipelines.get refused", func(t *testing.T) {
		if m, err := e.sub.Request("gantry.api.pipelines.get", []byte(ref), 300*time.Millisecond); err == nil {
			t.Fatalf("the submit-only user got a reply from pipelines.get: %s", m.Data)
		}
		select {
		case err := <-e.subErrs:
			if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"gantry.api.pipelines.get"`) {
				t.Fatalf("async error %v, want a permissions violation on gantry.api.pipelines.get", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no permissions violation reported")
		}
	})

	t.Run("pipelines.status", func(t *testing.T) {
		m := e.req(e.sub, "gantry.api.pipelines.status", ref)
		if h := m.Header.Get(micro.ErrorCodeHeader); h != "" {
			t.Fatalf("error %s: %s", h, m.Data)
		}
		for _, s := range []string{paramSecret, envSecret, `"spec"`, `"parameters"`} {
			if strings.Contains(string(m.Data), s) {
				t.Errorf("pipelines.status shows %s: %s", s, m.Data)
			}
		}
		var pr jobs.PipelineRun
		if err := json.Unmarshal(m.Data, &pr); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, st := range pr.Stages {
			names = append(names, st.Name)
		}
		if strings.Join(names, ",") != "extract,transform,load" {
			t.Errorf("stages %v, want DAG order extract, transform, load", names)
		}
		ex, want := pr.StageState("extract"), full.StageState("extract")
		if pr.PipelineRunID != started.PipelineRunID || pr.Pipeline != "secretive" || pr.Status != jobs.StatusRunning ||
			ex == nil || len(ex.Runs) != 2 || len(want.Runs) != 2 || ex.Runs[0].RunID != want.Runs[0].RunID ||
			ex.Runs[1].RunID != want.Runs[1].RunID || ex.Runs[1].ArrayIndex == nil || *ex.Runs[1].ArrayIndex != 1 {
			t.Errorf("pipelines.status %+v, want the run %+v, its stages in DAG order, without its spec", pr, full)
		}
		got := apiError(t, e.req(e.sub, "gantry.api.pipelines.status", `{"pipelineRunId":"pr-01jzzzzzzzzzzzzzzzzzzzzzzz"}`))
		if got.Code != jobs.CodeNotFound || !strings.Contains(got.Message, "pr-01jzzzzzzzzzzzzzzzzzzzzzzz") {
			t.Errorf("unknown pipeline run: %s %s, want not_found naming it", got.Code, got.Message)
		}
		got = apiError(t, e.req(e.sub, "gantry.api.pipelines.status", `{}`))
		if got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, "pipelineRunId") {
			t.Errorf("no id: %s %s, want invalid_argument naming pipelineRunId", got.Code, got.Message)
		}
	})

	t.Run("the operator's pipelines.get", func(t *testing.T) {
		m := e.req(e.op, "gantry.api.pipelines.get", ref)
		for _, s := range []string{paramSecret, envSecret, `"spec"`} {
			if !strings.Contains(string(m.Data), s) {
				t.Errorf("pipelines.get as the operator lacks %s: %s", s, m.Data)
			}
		}
	})

	t.Run("schema", func(t *testing.T) {
		var rep struct{ Properties map[string]any }
		json.Unmarshal([]byte(endpointMetadata("pipelines.status")[MetaResponseSchema]), &rep)
		for _, f := range []string{"spec", "parameters", "idempotencyKey"} {
			if _, ok := rep.Properties[f]; ok {
				t.Errorf("pipelines.status reply schema has %s: %v", f, rep.Properties)
			}
		}
		if rep.Properties["stages"] == nil || rep.Properties["pipelineRunId"] == nil {
			t.Errorf("pipelines.status reply schema: properties %v, want a pipeline run's", rep.Properties)
		}
	})
}

// TestPipelineRunStatusHidesOutputValues: a stage whose arraySize read a
// bad output quotes the value in its reason (pipelines.get shows it to
// the operator); pipelines.status, the submitter's view, does not, in any
// try, and leaves the run it was given as it was.
func TestPipelineRunStatusHidesOutputValues(t *testing.T) {
	const secret = "postgres://app:PW@db"
	reason := `arraySize: extract.DB is "` + secret + `": want an integer 0..10000`
	pr := &jobs.PipelineRun{PipelineRunID: "pr-1", Status: jobs.StatusFailed, StoppedReason: "stage transform failed: " + reason,
		Stages: []jobs.StageState{{Name: "extract", Status: jobs.StatusSucceeded},
			{Name: "transform", Status: jobs.StatusFailed, Reason: reason, Try: 2,
				EarlierTries: []jobs.StageTry{{Try: 1, Status: jobs.StatusFailed, Reason: reason}}}}}
	b, err := json.Marshal(pipelineRunStatus(pr))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) || !strings.Contains(string(b), "arraySize: extract.DB is a value not shown here") {
		t.Errorf("pipelines.status: %s", b)
	}
	if pr.Stages[1].Reason != reason || pr.Stages[1].EarlierTries[0].Reason != reason {
		t.Errorf("the stored run changed: %+v", pr.Stages[1])
	}
}
