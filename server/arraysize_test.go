package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

const dynamicYAML = `name: files
stages:
- {name: extract, taskDefinition: hello}
- {name: transform, taskDefinition: hello, dependsOn: [extract], arraySize: {fromOutput: extract.FILES}}
- {name: load, taskDefinition: hello, dependsOn: [transform]}
`

// putOutputs stores what an attempt of a stage's run wrote to its
// /gantry/out/outputs.env, as its worker does before reporting its end.
func (e *apiEnv) putOutputs(pr, stage, runID string, attempt int, env string) {
	e.t.Helper()
	dir := e.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, jobs.StageOutputsFile), []byte(env), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := queue.NewStager(e.queue().JetStream(), 0, 1).Put(context.Background(), pr, stage, runID, attempt, dir); err != nil {
		e.t.Fatal(err)
	}
}

// Over the real NATS and object store: extract writes FILES=3, and
// transform runs 3 children, each told its index and the size; a server
// restarted after the decision, the stage's runs not stored (a crash
// mid-fan-out), submits the same children though the output changed.
// A reference to a stage not upstream is refused at apply.
func TestArraySizeFromOutputOverNATS(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)

	bad := strings.Replace(dynamicYAML, "dependsOn: [extract], arraySize", "arraySize", 1)
	body, _ := json.Marshal(map[string][]byte{"data": []byte(bad)})
	got := apiError(t, e.req(e.op, "gantry.api.pipelines.apply", string(body)))
	if want := `stages[1](transform).arraySize.fromOutput: "extract.FILES": stage extract is not upstream of transform`; got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, want) {
		t.Fatalf("apply with extract not upstream: %s %q, want %q", got.Code, got.Message, want)
	}

	e.apply(dynamicYAML)
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"files"}`, &pr)
	id := pr.PipelineRunID
	extract := e.stageRunning(id, "extract")
	e.putOutputs(id, "extract", extract, 1, "FILES=3\n")
	e.finish(extract)
	running := e.waitRun(id, func(pr *jobs.PipelineRun) bool {
		return pr.StageState("transform").Status == jobs.StatusRunning
	})
	st := running.StageState("transform")
	if st.ArraySize == nil || *st.ArraySize != 3 || len(st.Runs) != 3 {
		t.Fatalf("transform: size %v, runs %+v", st.ArraySize, st.Runs)
	}
	children := make([]string, len(st.Runs))
	for i, r := range st.Runs {
		children[i] = r.RunID
		var run jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, r.RunID), &run)
		env := map[string]string{}
		for _, co := range run.Spec.Overrides.ContainerOverrides {
			for _, kv := range co.Environment {
				env[kv.Name] = kv.Value
			}
		}
		if idx := strconv.Itoa(i); r.ArrayIndex == nil || *r.ArrayIndex != i || env["GANTRY_ARRAY_INDEX"] != idx ||
			env["AWS_BATCH_JOB_ARRAY_INDEX"] != idx || env["GANTRY_ARRAY_SIZE"] != "3" {
			t.Errorf("child %d: env %v", i, env)
		}
	}

	// A crash after the decision, before the stage's runs were stored:
	// the stage is PENDING again with its size, and the output now says 5.
	e.stop()
	db := e.openStore()
	if _, err := db.UpdatePipelineRun(context.Background(), id, func(p *jobs.PipelineRun) bool {
		s := p.StageState("transform")
		s.Status, s.StartedAt, s.Runs = jobs.StatusPending, nil, []jobs.StageRun{}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e.putOutputs(id, "extract", extract, 2, "FILES=5\n")
	e.startServer()
	e.waitAll()
	again := e.waitRun(id, func(pr *jobs.PipelineRun) bool {
		return pr.StageState("transform").Status == jobs.StatusRunning
	}).StageState("transform")
	var ids []string
	for _, r := range again.Runs {
		ids = append(ids, r.RunID)
	}
	if !slices.Equal(ids, children) || *again.ArraySize != 3 {
		t.Fatalf("after the restart: size %d, children %v, want %v", *again.ArraySize, ids, children)
	}
	for _, c := range children {
		e.finish(c)
	}
	e.finish(e.stageRunning(id, "load"))
	if done := e.waitRun(id, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() }); done.Status != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s: %v", done.Status, done.StageStatuses())
	}
}
