package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// togetherYAML uses the day's four pipeline features at once: a
// sequential array, an N_TO_N array after it, trigger rules over both,
// a required parameter (the schedule's date) and dependsOnPast.
const togetherYAML = `name: together
dependsOnPast: true
parameters: {customer: acme, day: {required: true}}
schedule: {cron: '0 2 * * *', suspend: true, dateParameter: day}
stages:
- {name: migrate, taskDefinition: hello, arraySize: 3, arrayOrder: sequential}
- {name: verify, taskDefinition: hello, arraySize: 3, dependsOn: [{stage: migrate, type: N_TO_N}]}
- {name: alert, taskDefinition: hello, dependsOn: [migrate], triggerRule: oneFailed}
- {name: cleanup, taskDefinition: hello, dependsOn: [migrate, verify], triggerRule: allDone}
`

// child returns the run id of child i of stage in pr, waiting for the
// stage to have its runs.
func (e *apiEnv) child(id, stage string, i int) string {
	e.t.Helper()
	pr := e.waitRun(id, func(pr *jobs.PipelineRun) bool {
		st := pr.StageState(stage)
		return st.Status == jobs.StatusRunning && len(st.Runs) > i
	})
	return pr.StageState(stage).Runs[i].RunID
}

// finishChild finishes child i of stage once it is released, as a
// worker, which gets it only then, would.
func (e *apiEnv) finishChild(id, stage string, i int) string {
	e.t.Helper()
	r := e.child(id, stage, i)
	e.waitReleased(r)
	e.finish(r)
	return r
}

func dumpRun(pr *jobs.PipelineRun) string {
	b, _ := json.MarshalIndent(pr, "", " ")
	return string(b)
}

// TestFeaturesTogetherFailRetry: a backfilled day whose sequential
// array fails midway fires oneFailed and allDone, holds the next day
// (dependsOnPast); its retry runs every child again in order, and its
// success releases the next day.
func TestFeaturesTogetherFailRetry(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(togetherYAML)

	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"together","from":"2026-12-01T00:00:00Z","to":"2026-12-02T23:00:00Z"}`, &bf)
	if len(bf) != 2 || bf[0].Status != jobs.StatusRunning || bf[1].Status != jobs.StatusPending {
		t.Fatalf("backfill: %+v", bf)
	}
	d1, d2 := bf[0].PipelineRunID, bf[1].PipelineRunID
	if bf[0].Parameters["day"] != "2026-12-01" || bf[0].Parameters["customer"] != "acme" {
		t.Fatalf("day 1 parameters %v", bf[0].Parameters)
	}

	m0 := e.child(d1, "migrate", 0)
	m1 := e.child(d1, "migrate", 1)
	m2 := e.child(d1, "migrate", 2)
	e.finish(m0)
	e.finishChild(d1, "verify", 0)
	e.fail(m1) // m2 is not run, nor verify[1], verify[2]
	_ = m2
	pr := e.waitRun(d1, func(pr *jobs.PipelineRun) bool {
		return pr.StageState("alert").Status == jobs.StatusRunning && pr.StageState("cleanup").Status == jobs.StatusRunning
	})
	if s := pr.StageStatuses(); s["migrate"] != jobs.StatusFailed || s["verify"] != jobs.StatusFailed {
		t.Fatalf("day 1 stages %v:\n%s", s, dumpRun(pr))
	}
	e.finish(e.stageRunning(d1, "alert"))
	e.finish(e.stageRunning(d1, "cleanup"))
	pr = e.waitRun(d1, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusFailed })
	t.Logf("migrate: %s; verify: %s", pr.StageState("migrate").Reason, pr.StageState("verify").Reason)
	e.waitRun(d2, func(pr *jobs.PipelineRun) bool { return strings.HasSuffix(pr.StatusReason, "runs it again") })

	// The retry runs every stage again, migrate's children in order.
	e.ok("gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, d1), nil)
	n0 := e.child(d1, "migrate", 0)
	n1 := e.child(d1, "migrate", 1)
	if n0 == m0 || n1 == m1 {
		t.Fatalf("retry kept migrate's runs")
	}
	if r := e.waitFor(n1, "waiting", func(r *jobs.Run) bool { return r.Status == jobs.StatusQueued }); !r.Waiting() {
		t.Fatalf("retried migrate[1] does not wait for migrate[0]: %+v", r)
	}
	for i := range 3 {
		e.finishChild(d1, "migrate", i)
		e.finishChild(d1, "verify", i)
	}
	e.finish(e.stageRunning(d1, "cleanup"))
	pr = e.waitRun(d1, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() })
	if pr.Status != jobs.StatusSucceeded || pr.StageState("alert").Status != jobs.StatusSkipped {
		t.Fatalf("retried day 1:\n%s", dumpRun(pr))
	}
	// Day 2 starts by itself.
	e.child(d2, "migrate", 0)
}

// TestFeaturesTogetherRestart: a server that stops while a sequential
// array's children wait, and while the next day waits for its past,
// picks both up at its next start from what happened meanwhile: the
// failure of migrate[0] leaves the later children not run, fires alert
// and cleanup; day 1's retry succeeding while no server runs starts
// day 2 at the next start.
func TestFeaturesTogetherRestart(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(togetherYAML)
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"together","from":"2026-12-01T00:00:00Z","to":"2026-12-02T23:00:00Z"}`, &bf)
	d1, d2 := bf[0].PipelineRunID, bf[1].PipelineRunID
	m0 := e.child(d1, "migrate", 0)
	e.waitFor(e.child(d1, "migrate", 2), "waiting", func(r *jobs.Run) bool { return r.Waiting() })

	e.stop()
	e.fail(m0) // reported while no server runs: kept in the events stream
	e.startServer()
	e.waitAll()
	e.finish(e.stageRunning(d1, "alert"))
	e.finish(e.stageRunning(d1, "cleanup"))
	pr := e.waitRun(d1, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() })
	if s := pr.StageStatuses(); pr.Status != jobs.StatusFailed || s["migrate"] != jobs.StatusFailed || s["verify"] != jobs.StatusFailed {
		t.Fatalf("day 1 after the restart:\n%s", dumpRun(pr))
	}
	if want := "1 of 3 runs failed; 2 of 3 runs not run after migrate[0] FAILED"; pr.StageState("migrate").Reason != want {
		t.Errorf("migrate: %q, want %q", pr.StageState("migrate").Reason, want)
	}
	if got := e.getRun(d2); got.Status != jobs.StatusPending {
		t.Fatalf("day 2: %s %q, want PENDING", got.Status, got.StatusReason)
	}

	e.ok("gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, d1), nil)
	var ids []string
	for i := range 3 {
		id := e.child(d1, "migrate", i)
		if i < 2 {
			e.finishChild(d1, "migrate", i)
			e.finishChild(d1, "verify", i)
		}
		ids = append(ids, id)
	}
	e.waitReleased(ids[2])
	e.stop()
	e.finish(ids[2])
	e.startServer()
	e.waitAll()
	e.finishChild(d1, "verify", 2)
	e.finish(e.stageRunning(d1, "cleanup"))
	e.waitRun(d1, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusSucceeded })
	e.child(d2, "migrate", 0)
}

// TestPipelineRunKeyWhileWaiting: a key reused while its run waits
// PENDING for a place (maxActiveRuns) gets that run, waiting, and starts
// no other; a pipeline retry of a run with a key keeps it, so the key
// still names the one run.
func TestPipelineRunKeyWhileWaiting(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: reload\nmaxActiveRuns: 1\nparameters: {customer: {required: true}}\nstages: [{name: only, taskDefinition: hello}]\n")
	first := e.runPipeline("reload", `"parameters":{"customer":"1"}`)
	waiting := e.runPipeline("reload", `"parameters":{"customer":"2"},"idempotencyKey":"k"`)
	if waiting.Status != jobs.StatusPending {
		t.Fatalf("second run: %s, want PENDING", waiting.Status)
	}
	for _, more := range []string{`"parameters":{"customer":"2"},"idempotencyKey":"k"`, `"idempotencyKey":"k"`} {
		again := e.runPipeline("reload", more)
		if again.PipelineRunID != waiting.PipelineRunID || again.Status != jobs.StatusPending {
			t.Fatalf("key reused (%s): %s %s, want %s PENDING", more, again.PipelineRunID, again.Status, waiting.PipelineRunID)
		}
	}
	if runs := e.pipelineRuns("reload"); len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	e.fail(e.stageRunning(first.PipelineRunID, "only"))
	e.fail(e.stageRunning(waiting.PipelineRunID, "only"))
	e.waitRun(waiting.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusFailed })
	e.ok("gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, waiting.PipelineRunID), nil)
	if again := e.runPipeline("reload", `"idempotencyKey":"k"`); again.PipelineRunID != waiting.PipelineRunID || again.Status.Terminal() {
		t.Fatalf("key after the retry: %s %s, want %s active", again.PipelineRunID, again.Status, waiting.PipelineRunID)
	}
	e.finish(e.stageRunning(waiting.PipelineRunID, "only"))
	e.waitRun(waiting.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusSucceeded })
}

// TestApplyUpstreamKeepsTriggeredRequiredParameter: a pipeline that
// another's trigger requires a parameter of cannot drop that parameter
// at apply (nor at a dry run): the runs its ends trigger would each be
// refused, with no one told but the server's log.
func TestApplyUpstreamKeepsTriggeredRequiredParameter(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: sales\nparameters: {customer: acme}\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply("name: report\nparameters: {customer: {required: true}}\ntriggers: [{pipeline: sales}]\nstages: [{name: only, taskDefinition: hello}]\n")

	const dropped = "name: sales\nstages: [{name: only, taskDefinition: hello}]\n"
	const want = "parameters: pipeline report, which sales triggers (its triggers[0]), requires parameter customer"
	for _, dry := range []bool{true, false} {
		_, err := e.applyReq(dropped, dry)
		if err == nil || err.Code != jobs.CodeInvalidArgument || !strings.Contains(err.Message, want) {
			t.Errorf("apply (dry run %v) of sales without customer: %+v, want invalid_argument %q", dry, err, want)
		}
	}
	// Still declared (a default or required), it is accepted.
	e.apply("name: sales\nparameters: {customer: {required: true}}\nstages: [{name: only, taskDefinition: hello}]\n")
}
