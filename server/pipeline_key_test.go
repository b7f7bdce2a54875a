package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go/micro"
)

// runError asks pipelines.run and returns its error reply.
func (e *apiEnv) runError(body string) jobs.Error {
	e.t.Helper()
	m := e.req(e.op, "gantry.api.pipelines.run", body)
	if m.Header.Get(micro.ErrorCodeHeader) == "" {
		e.t.Fatalf("pipelines.run %s: no error: %s", body, m.Data)
	}
	return apiError(e.t, m)
}

// TestPipelineRunIdempotencyKey: requests racing with one key make one
// pipeline run and all get it, whatever parameters each gives (as
// runs.submit, the first one's hold); so do retries after it ended, and
// a retry the pipeline as it is now would refuse. The key is the
// pipeline's: another pipeline's run, or one of a pipeline of the same
// name deleted since, does not hold it.
func TestPipelineRunIdempotencyKey(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	const reload = "name: reload\nparameters: {customer: {required: true}, day: x}\nstages: [{name: only, taskDefinition: hello}]\n"
	e.apply(reload)
	e.apply("name: other\nstages: [{name: only, taskDefinition: hello}]\n")

	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"name":"reload","parameters":{"customer":"%d"},"idempotencyKey":"reload-42"}`, i)
			m, err := e.op.Request("gantry.api.pipelines.run", []byte(body), 10*time.Second)
			if err == nil && m.Header.Get(micro.ErrorCodeHeader) != "" {
				err = fmt.Errorf("error reply %s", m.Data)
			}
			var pr jobs.PipelineRun
			if err == nil {
				err = json.Unmarshal(m.Data, &pr)
			}
			ids[i], errs[i] = pr.PipelineRunID, err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("request %d: %s %v; request 0: %s", i, ids[i], errs[i], ids[0])
		}
	}
	runs := e.pipelineRuns("reload")
	if len(runs) != 1 || runs[0].IdempotencyKey != "run/reload/reload-42" {
		t.Fatalf("%d runs of reload, want 1 holding run/reload/reload-42: %+v", len(runs), runs)
	}
	first := runs[0]

	// The same key for another pipeline is another run.
	var o jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"other","idempotencyKey":"reload-42"}`, &o)
	if o.PipelineRunID == first.PipelineRunID || o.Pipeline != "other" {
		t.Fatalf("the key for pipeline other gave %s of %s", o.PipelineRunID, o.Pipeline)
	}

	// Once it ended, a retry gets it as it is now.
	e.finish(e.stageRunning(first.PipelineRunID, "only"))
	e.waitRun(first.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusSucceeded })
	var again jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"reload","parameters":{"customer":"7"},"idempotencyKey":"reload-42"}`, &again)
	if again.PipelineRunID != first.PipelineRunID || again.Status != jobs.StatusSucceeded || again.Parameters["customer"] != first.Parameters["customer"] {
		t.Fatalf("retry after the end: %s %s %v, want %s SUCCEEDED %v", again.PipelineRunID, again.Status, again.Parameters,
			first.PipelineRunID, first.Parameters)
	}
	// A retry that lacks what the pipeline requires still gets its run:
	// the key is looked up first.
	e.ok("gantry.api.pipelines.run", `{"name":"reload","idempotencyKey":"reload-42"}`, &again)
	if again.PipelineRunID != first.PipelineRunID {
		t.Fatalf("retry without the parameter: %s, want %s", again.PipelineRunID, first.PipelineRunID)
	}

	// Without the key, the missing parameter is refused, naming it.
	err := e.runError(`{"name":"reload","parameters":{"day":"y"}}`)
	if want := "parameters.customer: pipeline reload needs parameter customer: give it a value"; err.Code != jobs.CodeInvalidArgument || err.Message != want {
		t.Errorf("run without customer: %+v, want invalid_argument %q", err, want)
	}
	err = e.runError(fmt.Sprintf(`{"name":"reload","parameters":{"customer":"1"},"idempotencyKey":%q}`, strings.Repeat("k", 513)))
	if err.Code != jobs.CodeInvalidArgument || !strings.HasPrefix(err.Message, "idempotencyKey: longer than 512 bytes") {
		t.Errorf("a long key: %+v", err)
	}

	// Deleted and applied again, the pipeline is another: the key makes a
	// new run, once.
	e.ok("gantry.api.pipelines.delete", `{"name":"reload"}`, nil)
	e.apply(reload)
	var fresh, fresh2 jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"reload","parameters":{"customer":"9"},"idempotencyKey":"reload-42"}`, &fresh)
	e.ok("gantry.api.pipelines.run", `{"name":"reload","parameters":{"customer":"9"},"idempotencyKey":"reload-42"}`, &fresh2)
	if fresh.PipelineRunID == first.PipelineRunID || fresh2.PipelineRunID != fresh.PipelineRunID ||
		!strings.HasPrefix(fresh.IdempotencyKey, "run/reload@") {
		t.Fatalf("after delete and apply: %s (%s) then %s, the deleted pipeline's %s", fresh.PipelineRunID, fresh.IdempotencyKey,
			fresh2.PipelineRunID, first.PipelineRunID)
	}
	if runs := e.pipelineRuns("reload"); len(runs) != 1 {
		t.Errorf("%d runs of the new reload, want 1", len(runs))
	}
}

// TestRequiredParameterFromATrigger: a triggered run takes a required
// parameter from its upstream run; a trigger whose upstream pipeline does
// not declare it is refused at apply, naming it, and so is a schedule
// that does not set it.
func TestRequiredParameterFromATrigger(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: sales\nparameters: {customer: all}\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply("name: plain\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply("name: report\nparameters: {customer: {required: true}}\ntriggers: [{pipeline: sales}]\nstages: [{name: only, taskDefinition: hello}]\n")
	var up jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"sales","parameters":{"customer":"42"}}`, &up)
	e.finish(up.Stages[0].Runs[0].RunID)
	reports := e.waitRuns("report", func(runs []jobs.PipelineRun) bool { return len(runs) == 1 })
	if got := reports[0].Parameters["customer"]; got != "42" {
		t.Errorf("triggered run's customer %q, want the upstream run's 42", got)
	}

	apply := func(src string) jobs.Error {
		body, _ := json.Marshal(map[string][]byte{"data": []byte(src)})
		m := e.req(e.op, "gantry.api.pipelines.apply", string(body))
		if m.Header.Get(micro.ErrorCodeHeader) == "" {
			t.Fatalf("applied %s", src)
		}
		return apiError(t, m)
	}
	err := apply("name: report2\nparameters: {customer: {required: true}}\ntriggers: [{pipeline: plain}]\nstages: [{name: only, taskDefinition: hello}]\n")
	if want := "triggers[0].pipeline: plain declares no parameter customer, which this pipeline requires"; !strings.Contains(err.Message, want) {
		t.Errorf("trigger by a pipeline without the parameter: %+v, want %q", err, want)
	}
	err = apply("name: nightly\nparameters: {customer: {required: true}}\nschedule: {cron: '@daily'}\nstages: [{name: only, taskDefinition: hello}]\n")
	if want := "schedule: its runs would have no value for parameter customer"; !strings.Contains(err.Message, want) {
		t.Errorf("schedule without the parameter: %+v, want %q", err, want)
	}
}
