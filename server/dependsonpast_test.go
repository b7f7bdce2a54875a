package server

import (
	"fmt"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestDependsOnPastHoldsScheduledRunsInOrder: with dependsOnPast a
// backfill of three days runs strictly one day after the other; a manual
// run neither waits nor counts; a day whose previous one FAILED waits,
// saying so and naming the retry, and starts by itself once the retry
// succeeded; a previous day stopped (CANCELED) holds the next as a
// failure does; a waiting run stopped ends CANCELED unstarted.
func TestDependsOnPastHoldsScheduledRunsInOrder(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: sales\ndependsOnPast: true\nmaxActiveRuns: 3\nschedule: {cron: '0 2 * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")

	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"sales","from":"2026-12-01T00:00:00Z","to":"2026-12-03T23:00:00Z"}`, &bf)
	if len(bf) != 3 {
		t.Fatalf("backfill: %d runs, want 3", len(bf))
	}
	d1, d2, d3 := bf[0].PipelineRunID, bf[1].PipelineRunID, bf[2].PipelineRunID
	waitFor := func(prev, day string) string {
		return fmt.Sprintf("waiting for %s (scheduled 2026-12-%sT02:00:00Z) to succeed (dependsOnPast): ", prev, day)
	}
	if bf[0].Status != jobs.StatusRunning {
		t.Fatalf("day 1: %s %q, want RUNNING: it has no past", bf[0].Status, bf[0].StatusReason)
	}
	// maxActiveRuns 3 leaves room: the days wait for their past alone.
	checkWaiting(t, &bf[1], waitFor(d1, "01")+"it is RUNNING")
	checkWaiting(t, &bf[2], waitFor(d2, "02")+"it is PENDING")

	// A manual run has no scheduled time: it starts at once.
	if m := e.runPipeline("sales", ""); m.Status != jobs.StatusRunning {
		t.Fatalf("manual run: %s %q, want RUNNING", m.Status, m.StatusReason)
	} else {
		e.finish(m.Stages[0].Runs[0].RunID)
	}

	// Day 1 fails: day 2 waits, told to retry day 1.
	e.fail(e.stageRunning(d1, "only"))
	e.waitRun(d2, func(pr *jobs.PipelineRun) bool {
		return pr.StatusReason == waitFor(d1, "01")+"it FAILED; gantry pipeline retry "+d1+" runs it again"
	})
	checkWaiting(t, e.getRun(d2), waitFor(d1, "01")+"it FAILED; gantry pipeline retry "+d1+" runs it again")
	checkWaiting(t, e.getRun(d3), waitFor(d2, "02")+"it is PENDING")

	// Its retry runs it again, and day 2 is told so; day 1 succeeding
	// starts day 2 without anyone touching it.
	var retried jobs.PipelineRun
	e.ok("gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, d1), &retried)
	if retried.Status != jobs.StatusRunning {
		t.Fatalf("retried day 1: %s %q, want RUNNING (its past: none)", retried.Status, retried.StatusReason)
	}
	checkWaiting(t, e.getRun(d2), waitFor(d1, "01")+"it is RUNNING")
	e.finish(e.stageRunning(d1, "only"))
	e.waitRun(d1, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusSucceeded })
	run2 := e.stageRunning(d2, "only")
	e.waitRun(d3, func(pr *jobs.PipelineRun) bool { return pr.StatusReason == waitFor(d2, "02")+"it is RUNNING" })

	// Day 2 stopped: CANCELED holds day 3 as FAILED would.
	e.ok("gantry.api.pipelines.stop", fmt.Sprintf(`{"pipelineRunId":%q}`, d2), nil)
	e.end(run2, jobs.StatusCanceled, 137)
	e.waitRun(d2, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusCanceled })
	e.waitRun(d3, func(pr *jobs.PipelineRun) bool {
		return pr.StatusReason == waitFor(d2, "02")+"it was CANCELED; gantry pipeline retry "+d2+" runs it again"
	})
	checkWaiting(t, e.getRun(d3), waitFor(d2, "02")+"it was CANCELED; gantry pipeline retry "+d2+" runs it again")

	e.ok("gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, d2), nil)
	e.finish(e.stageRunning(d2, "only"))
	e.finish(e.stageRunning(d3, "only"))
	e.waitRun(d3, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusSucceeded })

	// A second backfill's first day follows day 3, which SUCCEEDED: it
	// starts. Stopped while waiting, a run ends CANCELED without
	// starting.
	e.ok("gantry.api.pipelines.backfill", `{"name":"sales","from":"2026-12-04T00:00:00Z","to":"2026-12-05T23:00:00Z"}`, &bf)
	if len(bf) != 2 || bf[0].Status != jobs.StatusRunning {
		t.Fatalf("second backfill: %d runs, the first %s %q", len(bf), bf[0].Status, bf[0].StatusReason)
	}
	d5 := bf[1].PipelineRunID
	checkWaiting(t, &bf[1], waitFor(bf[0].PipelineRunID, "04")+"it is RUNNING")
	e.ok("gantry.api.pipelines.stop", fmt.Sprintf(`{"pipelineRunId":%q}`, d5), nil)
	got := e.waitRun(d5, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusCanceled })
	if got.StartedAt != nil || len(got.Stages[0].Runs) != 0 {
		t.Fatalf("stopped waiting run started: %+v", got)
	}
	e.finish(e.stageRunning(bf[0].PipelineRunID, "only"))
	e.waitRun(bf[0].PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusSucceeded })
}

// TestDependsOnPastOffReleasesWaitingRuns: applying the file without
// dependsOnPast starts the runs that waited for their past at once, as a
// raised maxActiveRuns does.
func TestDependsOnPastOffReleasesWaitingRuns(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	const file = "name: sales\n%sschedule: {cron: '0 2 * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n"
	e.apply(fmt.Sprintf(file, "dependsOnPast: true\n"))
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"sales","from":"2026-12-01T00:00:00Z","to":"2026-12-02T23:00:00Z"}`, &bf)
	if len(bf) != 2 || bf[0].Status != jobs.StatusRunning || bf[1].Status != jobs.StatusPending {
		t.Fatalf("backfill: %+v", bf)
	}
	e.fail(e.stageRunning(bf[0].PipelineRunID, "only"))
	e.waitRun(bf[1].PipelineRunID, func(pr *jobs.PipelineRun) bool {
		return pr.Status == jobs.StatusPending && pr.StatusReason != "" && pr.StatusReason[len(pr.StatusReason)-len("runs it again"):] == "runs it again"
	})
	e.apply(fmt.Sprintf(file, ""))
	e.finish(e.stageRunning(bf[1].PipelineRunID, "only"))
	e.waitRun(bf[1].PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusSucceeded })
}
