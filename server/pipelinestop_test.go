package server

import (
	"fmt"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// stopOrderedYAML has a sequential array and an N_TO_N array after it,
// listed before it: every child but migrate[0] waits for another.
const stopOrderedYAML = `name: ordered
stages:
- {name: verify, taskDefinition: hello, arraySize: 3, dependsOn: [{stage: migrate, type: N_TO_N}]}
- {name: migrate, taskDefinition: hello, arraySize: 3, arrayOrder: sequential}
`

// TestPipelineStopCancelsOrderedChildren: gantry pipeline stop of a run
// whose sequential array and N_TO_N array have children waiting ends
// every child CANCELED with the stop's reason, none FAILED because the
// stop of the child it waited for reached it first (before the fix,
// migrate[2], verify[1] and verify[2] ended FAILED, TaskFailedToStart,
// and the stages' reasons said they were not run); both stages and the
// run end CANCELED, their reasons counting the children canceled.
func TestPipelineStopCancelsOrderedChildren(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(stopOrderedYAML)
	pr := e.runPipeline("ordered", "")
	e.finish(e.child(pr.PipelineRunID, "migrate", 0))
	e.finishChild(pr.PipelineRunID, "verify", 0)
	m1 := e.child(pr.PipelineRunID, "migrate", 1)
	e.waitReleased(m1) // migrate[1] may run; migrate[2], verify[1], verify[2] wait
	e.child(pr.PipelineRunID, "verify", 2)
	e.ok("gantry.api.pipelines.stop", fmt.Sprintf(`{"pipelineRunId":%q,"reason":"wrong input"}`, pr.PipelineRunID), nil)
	got := e.waitRun(pr.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() })
	for _, stage := range []string{"migrate", "verify"} {
		st := got.StageState(stage)
		if st.Status != jobs.StatusCanceled || st.Reason != "2 of 3 runs canceled" {
			t.Errorf("stage %s: %s (%q), want CANCELED (%q)", stage, st.Status, st.Reason, "2 of 3 runs canceled")
		}
		for i, ref := range st.Runs[1:] {
			var c jobs.Run
			e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, ref.RunID), &c)
			if c.Status != jobs.StatusCanceled || c.StopCode != jobs.StopUserInitiated || c.StoppedReason != "wrong input" {
				t.Errorf("%s[%d]: %s, stop code %q, reason %q, status reason %q; want CANCELED, %s, %q", stage, i+1,
					c.Status, c.StopCode, c.StoppedReason, c.StatusReason, jobs.StopUserInitiated, "wrong input")
			}
		}
	}
	if got.Status != jobs.StatusCanceled {
		t.Errorf("pipeline run %s, want CANCELED:\n%s", got.Status, dumpRun(got))
	}
}
