package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// waitPipelineRun polls a pipeline run until ok holds, for at most 10s.
func (e *apiEnv) waitPipelineRun(id string, ok func(*jobs.PipelineRun) bool) *jobs.PipelineRun {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pr jobs.PipelineRun
		e.ok("gantry.api.pipelines.get", fmt.Sprintf(`{"pipelineRunId":%q}`, id), &pr)
		if ok(&pr) {
			return &pr
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pipeline run %s after 10s: %s %v", id, pr.Status, pr.StageStatuses())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func prEnded(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() }

// A pipeline run whose stage never starts (its cluster has no worker)
// ends FAILED past its timeoutSeconds, with stopCode Timeout and a reason
// saying after how long; its queued stage run is canceled saying why, and
// the stage waiting on a failure is canceled, not started. A retry gets
// the whole timeout again, from the retry. --timeout (timeoutSeconds of
// pipelines.run) bounds a run of a pipeline that has none.
func TestPipelineRunTimesOut(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(`name: stuck
timeoutSeconds: 1
stages:
  - {name: wait, taskDefinition: hello, cluster: nowhere}
  - {name: alert, taskDefinition: hello, dependsOn: [{stage: wait, condition: failure}]}
`)
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"stuck"}`, &pr)
	if pr.TimeoutSeconds != 1 {
		t.Fatalf("run's timeoutSeconds %d, want the file's 1", pr.TimeoutSeconds)
	}
	got := e.waitPipelineRun(pr.PipelineRunID, prEnded)
	checkTimedOut := func(got *jobs.PipelineRun, reason string) {
		t.Helper()
		if got.Status != jobs.StatusFailed || got.StopCode != jobs.StopTimeout || got.StoppedReason != reason {
			t.Fatalf("pipeline run %s stopCode %q reason %q, want FAILED Timeout %q", got.Status, got.StopCode, got.StoppedReason, reason)
		}
		wait, alert := got.StageState("wait"), got.StageState("alert")
		if wait.Status != jobs.StatusCanceled || alert.Status != jobs.StatusCanceled || len(alert.Runs) != 0 ||
			alert.Reason != "pipeline run timed out" {
			t.Fatalf("stages: wait %s, alert %s %q with %d runs", wait.Status, alert.Status, alert.Reason, len(alert.Runs))
		}
		var r jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, wait.Runs[0].RunID), &r)
		want := "pipeline run " + got.PipelineRunID + " timed out after 1s (timeoutSeconds 1)"
		if r.Status != jobs.StatusCanceled || r.StoppedReason != want || wait.Runs[0].StoppedReason != want {
			t.Fatalf("stage run %s %q (in the stage: %q), want CANCELED %q", r.Status, r.StoppedReason, wait.Runs[0].StoppedReason, want)
		}
	}
	checkTimedOut(got, "pipeline run timed out after 1s (timeoutSeconds 1)")

	e.ok("gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, pr.PipelineRunID), &pr)
	if pr.Status != jobs.StatusRunning || pr.StopCode != "" {
		t.Fatalf("retried: %s stopCode %q", pr.Status, pr.StopCode)
	}
	got = e.waitPipelineRun(pr.PipelineRunID, prEnded)
	if d := got.FinishedAt.Sub(*got.RetriedAt); d < time.Second {
		t.Fatalf("retried run ended %s after its retry, before its timeout", d)
	}
	checkTimedOut(got, "pipeline run timed out 1s after retry 1 (timeoutSeconds 1)")

	e.apply("name: free\nstages: [{name: wait, taskDefinition: hello, cluster: nowhere}]\n")
	e.ok("gantry.api.pipelines.run", `{"name":"free","timeoutSeconds":1}`, &pr)
	if got := e.waitPipelineRun(pr.PipelineRunID, prEnded); got.StopCode != jobs.StopTimeout || got.TimeoutSeconds != 1 {
		t.Fatalf("run with timeoutSeconds 1 of a pipeline without: %s stopCode %q", got.Status, got.StopCode)
	}

	for _, tc := range []struct{ subject, body, want string }{
		{"gantry.api.pipelines.run", `{"name":"free","timeoutSeconds":-1}`, "timeoutSeconds: -1: must be positive"},
		{"gantry.api.pipelines.run", `{"name":"free","timeoutSeconds":1576800001,"priority":"top"}`, "timeoutSeconds: 1576800001: must be at most"},
		{"gantry.api.pipelines.backfill", `{"name":"free","from":"2026-01-01T00:00:00Z","to":"2026-01-01T00:00:00Z","timeoutSeconds":-1}`,
			"timeoutSeconds: -1: must be positive"},
	} {
		er := apiError(t, e.req(e.op, tc.subject, tc.body))
		if er.Code != jobs.CodeInvalidArgument || !strings.Contains(er.Message, tc.want) {
			t.Errorf("%s %s: %+v, want %q", tc.subject, tc.body, er, tc.want)
		}
		if strings.Contains(tc.body, "top") && !strings.Contains(er.Message, `priority: "top"`) {
			t.Errorf("%s %s: %q does not name every problem", tc.subject, tc.body, er.Message)
		}
	}
}

// A deadline that passes while no server runs times the run out as soon
// as a server starts again. A backfilled run that waited PENDING (for
// --max-parallel) meanwhile starts its clock when it starts RUNNING: it
// does not time out with it.
func TestPipelineRunTimesOutAfterARestart(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(`name: hourly
timeoutSeconds: 3600
schedule: {cron: "0 * * * *", suspend: true}
stages: [{name: wait, taskDefinition: hello, cluster: nowhere}]
`)
	e.apply("name: free\nstages: [{name: wait, taskDefinition: hello, cluster: nowhere}]\n")
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"hourly","from":"2026-01-01T00:00:00Z","to":"2026-01-01T01:00:00Z","maxParallel":1}`, &bf)
	if len(bf) != 2 || bf[0].Status != jobs.StatusRunning || bf[1].Status != jobs.StatusPending {
		t.Fatalf("backfill: %d runs", len(bf))
	}
	var free, short jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"free"}`, &free)
	e.ok("gantry.api.pipelines.run", `{"name":"free","timeoutSeconds":7200}`, &short)

	// Down for 90 minutes, as far as the restarted server can tell.
	e.stop()
	e.opts = []Option{WithClock(func() time.Time { return time.Now().Add(90 * time.Minute) })}
	e.startServer()
	e.waitAll()
	got := e.waitPipelineRun(bf[0].PipelineRunID, prEnded)
	if got.Status != jobs.StatusFailed || got.StopCode != jobs.StopTimeout ||
		got.StoppedReason != "pipeline run timed out after 1h0m0s (timeoutSeconds 3600)" {
		t.Fatalf("run whose deadline passed while down: %s stopCode %q reason %q", got.Status, got.StopCode, got.StoppedReason)
	}
	second := e.waitPipelineRun(bf[1].PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.StartedAt != nil })
	if dl, ok := second.Deadline(); second.Status != jobs.StatusRunning || !ok || dl.Sub(*second.StartedAt) != time.Hour {
		t.Fatalf("the backfill's second run: %s, deadline %v %v", second.Status, dl, ok)
	}
	// The others are left to run: no timeout, or one not passed.
	for _, id := range []string{free.PipelineRunID, short.PipelineRunID, bf[1].PipelineRunID} {
		if pr := e.waitPipelineRun(id, func(*jobs.PipelineRun) bool { return true }); pr.Status != jobs.StatusRunning {
			t.Errorf("%s %s after the restart: %s %q", id, pr.Pipeline, pr.Status, pr.StoppedReason)
		}
	}
}

// TestForgetDueKeepsALaterDeadline: once a run timed out, the timeout
// goroutine forgets its deadline only if it is still the one due: a retry
// that ended the timed-out run and noted a new deadline meanwhile keeps
// its run timing out.
func TestForgetDueKeepsALaterDeadline(t *testing.T) {
	d := newDeadlines()
	now := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	d.at["pr-due"], d.at["pr-retried"] = now.Add(-time.Second), now.Add(time.Hour)
	d.forgetDue("pr-due", now)
	d.forgetDue("pr-retried", now)
	if _, ok := d.at["pr-due"]; ok {
		t.Error("a due deadline is kept")
	}
	if at, ok := d.at["pr-retried"]; !ok || !at.Equal(now.Add(time.Hour)) {
		t.Errorf("the retried run's later deadline is %v, %v; want kept", at, ok)
	}
}
