package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// TestStageRunsSayWhyTheyWait: with the real embedded NATS, the server
// and a real worker labelled disk=ssd, a pipeline run started with
// --constraint gpu=t4 has its stage RUNNING and the stage's runs QUEUED;
// pipelines.get, .runs and .status give each of those runs the
// statusReason the run has now, no worker having the label, and the
// latest one when it changes; the pipeline run's stored document holds
// none; a run that ended has none.
func TestStageRunsSayWhyTheyWait(t *testing.T) {
	t.Parallel()
	e := startLostEnv(t)
	startLabelledWorkers(t, e, map[string]map[string]string{"w-ssd": {"disk": "ssd"}})
	call := func(subject, body string, out any) {
		t.Helper()
		m, err := e.nc.Request("gantry.api."+subject, []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(m.Data), `"error":{`) {
			t.Fatalf("%s %s: %s", subject, body, m.Data)
		}
		// Into a zero value: decoding over an earlier answer would keep
		// what this one leaves out.
		reflect.ValueOf(out).Elem().SetZero()
		if err := json.Unmarshal(m.Data, out); err != nil {
			t.Fatal(err)
		}
	}
	var reg, applied any
	call("taskdefs.register", `{"family":"c","containerDefinitions":[{"name":"main","image":"c:1"}]}`, &reg)
	apply, _ := json.Marshal(map[string][]byte{"data": []byte(`name: cons
stages:
  - {name: a, taskDefinition: c, arraySize: 2}
  - {name: b, taskDefinition: c, dependsOn: [a]}
`)})
	call("pipelines.apply", string(apply), &applied)
	var pr jobs.PipelineRun
	call("pipelines.run", `{"name":"cons","constraints":["gpu=t4"]}`, &pr)
	id := `{"pipelineRunId":"` + pr.PipelineRunID + `"}`

	const why = "no worker in cluster default has labels gpu=t4"
	// reasons are those of stage a's runs, by the endpoint that showed them.
	reasons := func(got *jobs.PipelineRun) []string {
		var out []string
		if st := got.StageState("a"); st != nil {
			for _, r := range st.Runs {
				out = append(out, string(r.Status)+": "+r.StatusReason)
			}
		}
		return out
	}
	want := func(reason string) string { return "[QUEUED: " + reason + " QUEUED: " + reason + "]" }
	var got jobs.PipelineRun
	e.waitFor("stage a's runs", func() bool {
		call("pipelines.get", id, &got)
		st := got.StageState("a")
		return st != nil && st.Status == jobs.StatusRunning && len(st.Runs) == 2
	})
	if s := strings.Join(reasons(&got), " "); "["+s+"]" != want(why) {
		t.Errorf("pipelines.get: stage a's runs %s, want %s", s, want(why))
	}
	var status jobs.PipelineRun
	call("pipelines.status", id, &status)
	if s := strings.Join(reasons(&status), " "); "["+s+"]" != want(why) {
		t.Errorf("pipelines.status: stage a's runs %s, want %s", s, want(why))
	}
	var list []jobs.PipelineRun
	call("pipelines.runs", `{"name":"cons"}`, &list)
	if len(list) != 1 {
		t.Fatalf("pipelines.runs: %d runs", len(list))
	}
	if s := strings.Join(reasons(&list[0]), " "); "["+s+"]" != want(why) {
		t.Errorf("pipelines.runs: stage a's runs %s, want %s", s, want(why))
	}

	// Stored, the pipeline run holds no reason: it is read from the runs.
	stored, err := e.db.GetPipelineRun(e.ctx, pr.PipelineRunID)
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(reasons(stored), " "); "["+s+"]" != want("") {
		t.Errorf("stored: stage a's runs %s, want no reason", s)
	}
	// A reason that changes (as the sweep changes it when the fleet does)
	// is shown as it is now.
	first := got.StageState("a").Runs[0].RunID
	if _, err := e.db.UpdateRun(e.ctx, first, func(r *jobs.Run) bool {
		r.StatusReason = "no live worker in cluster default"
		return true
	}); err != nil {
		t.Fatal(err)
	}
	call("pipelines.get", id, &got)
	if r := got.StageState("a").Runs[0]; r.StatusReason != "no live worker in cluster default" {
		t.Errorf("after the run's reason changed: %q", r.StatusReason)
	}

	// Stopped, the runs ended: none waits, none says why.
	var stopped any
	call("pipelines.stop", id, &stopped)
	e.waitFor("the pipeline run to end", func() bool {
		call("pipelines.get", id, &got)
		return got.Status.Terminal()
	})
	for _, st := range got.Stages {
		for _, r := range st.Runs {
			if r.StatusReason != "" {
				t.Errorf("ended: stage %s run %s %s says %q", st.Name, r.RunID, r.Status, r.StatusReason)
			}
		}
	}
}
