package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

const whenYAML = `name: branch
parameters: {mode: daily}
stages:
- {name: check, taskDefinition: hello}
- {name: full, taskDefinition: hello, dependsOn: [check], when: {output: check.MODE, equals: full}}
- {name: incremental, taskDefinition: hello, dependsOn: [check], when: {output: check.MODE, notEquals: full}}
`

// Over the real NATS and object store: apply and its dry run refuse a
// when on a stage not upstream, naming the field; check writes
// MODE=incremental, full is SKIPPED saying so and incremental runs, its
// decision stored; pipelines.status, the submit role's view, does not
// show the output's value.
func TestWhenOverNATS(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)

	bad := strings.Replace(whenYAML, "dependsOn: [check], when: {output: check.MODE, equals: full}", "when: {output: check.MODE, equals: full}", 1)
	want := `stages[1](full).when.output: "check.MODE": stage check is not upstream of full`
	for _, dry := range []bool{true, false} {
		if _, err := e.applyReq(bad, dry); err == nil || err.Code != jobs.CodeInvalidArgument || !strings.Contains(err.Message, want) {
			t.Fatalf("apply (dry run %v) with check not upstream: %+v, want %q", dry, err, want)
		}
	}

	e.apply(whenYAML)
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"branch"}`, &pr)
	id := pr.PipelineRunID
	check := e.stageRunning(id, "check")
	e.putOutputs(id, "check", check, 1, "MODE=incremental\n")
	e.finish(check)
	inc := e.stageRunning(id, "incremental")
	got := e.waitRun(id, func(pr *jobs.PipelineRun) bool { return pr.StageState("full").Status != jobs.StatusPending })
	full := got.StageState("full")
	if full.Status != jobs.StatusSkipped || full.Reason != `when: check.MODE is "incremental", not "full"` || len(full.Runs) != 0 ||
		!got.StageState("incremental").WhenHeld {
		t.Fatalf("full %s %q, incremental held %v", full.Status, full.Reason, got.StageState("incremental").WhenHeld)
	}
	var status jobs.PipelineRun
	e.ok("gantry.api.pipelines.status", fmt.Sprintf(`{"pipelineRunId":%q}`, id), &status)
	if r := status.StageState("full").Reason; r != `when: check.MODE is a value not shown here, not "full"` {
		t.Fatalf("pipelines.status shows full's reason as %q", r)
	}
	e.finish(inc)
	if done := e.waitRun(id, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() }); done.Status != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s: %v", done.Status, done.StageStatuses())
	}
}
