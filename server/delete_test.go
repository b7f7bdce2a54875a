package server

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

func TestPipelineDelete(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(pipelineYAML) // nightly, scheduled
	e.apply("name: report\ntriggers: [{pipeline: nightly}]\nstages: [{name: only, taskDefinition: hello}]\n")
	var past, active jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"nightly"}`, &past)
	e.ok("gantry.api.pipelines.stop", fmt.Sprintf(`{"pipelineRunId":%q}`, past.PipelineRunID), nil)
	e.waitRuns("nightly", func(rs []jobs.PipelineRun) bool { return count(rs, jobs.StatusCanceled) == 1 })
	// No worker: the run's stage stays QUEUED, the run active.
	e.ok("gantry.api.pipelines.run", `{"name":"nightly"}`, &active)

	refused := func(body, code string, says ...string) {
		t.Helper()
		got := apiError(t, e.req(e.op, "gantry.api.pipelines.delete", body))
		if got.Code != code || strings.Contains(got.Message, "\n") {
			t.Errorf("%s: %s %q, want %s on one line", body, got.Code, got.Message, code)
		}
		for _, s := range says {
			if !strings.Contains(got.Message, s) {
				t.Errorf("%s: %q does not say %q", body, got.Message, s)
			}
		}
	}
	refused(`{"name":"nosuch"}`, jobs.CodeNotFound, "pipeline nosuch: not found")
	// Another pipeline's trigger names it, force or not.
	refused(`{"name":"nightly","force":true}`, jobs.CodeFailedPrecond, "report", "triggers")
	var reply DeleteReply
	e.ok("gantry.api.pipelines.delete", `{"name":"report"}`, &reply)
	if reply.Name != "report" || !reply.Deleted || reply.Stopped != nil || reply.Running != nil {
		t.Fatalf("delete report: %+v", reply)
	}
	// Active runs are named; nothing is deleted.
	refused(`{"name":"nightly"}`, jobs.CodeFailedPrecond, active.PipelineRunID, "force")
	e.ok("gantry.api.pipelines.describe", `{"name":"nightly"}`, nil)

	e.ok("gantry.api.pipelines.delete", `{"name":"nightly","force":true}`, &reply)
	if !reply.Deleted || !slices.Equal(reply.Stopped, []string{active.PipelineRunID}) {
		t.Fatalf("forced delete: %+v", reply)
	}
	for _, req := range []string{"pipelines.describe", "pipelines.run", "pipelines.runs", "schedules.trigger", "pipelines.delete"} {
		if got := apiError(t, e.req(e.op, "gantry.api."+req, `{"name":"nightly"}`)); got.Code != jobs.CodeNotFound {
			t.Errorf("%s after delete: %s %s", req, got.Code, got.Message)
		}
	}
	var ss []ScheduleInfo
	if e.ok("gantry.api.schedules.list", `{}`, &ss); len(ss) != 0 {
		t.Errorf("schedules after delete: %+v", ss)
	}
	// The history stays readable; the active run was stopped.
	for id, want := range map[string]jobs.Status{past.PipelineRunID: jobs.StatusCanceled, active.PipelineRunID: jobs.StatusCanceled} {
		var got jobs.PipelineRun
		e.ok("gantry.api.pipelines.get", fmt.Sprintf(`{"pipelineRunId":%q}`, id), &got)
		if got.Status != want || got.Pipeline != "nightly" || len(got.Spec.Stages) != 1 {
			t.Errorf("%s after delete: %s %s", id, got.Status, got.Pipeline)
		}
	}
	// The name can be applied again, from version 1.
	var applied PipelineApplyReply
	body, _ := json.Marshal(map[string][]byte{"data": []byte(pipelineYAML)})
	e.ok("gantry.api.pipelines.apply", string(body), &applied)
	if applied.Pipeline.Version != 1 || !applied.Changed {
		t.Errorf("applied again: version %d changed %v", applied.Pipeline.Version, applied.Changed)
	}
}

func TestScheduleDelete(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(pipelineYAML)
	e.apply("name: plain\nstages: [{name: only, taskDefinition: hello}]\n")
	e.ok("gantry.api.schedules.create", `{"name":"hourly-hello","taskDefinition":"hello","schedule":{"cron":"@hourly"}}`, nil)
	var pr jobs.PipelineRun
	e.ok("gantry.api.schedules.trigger", `{"name":"hourly-hello"}`, &pr) // stays active: no worker

	for body, want := range map[string]struct{ code, says string }{
		`{"name":"nosuch"}`:  {jobs.CodeNotFound, "schedule nosuch: not found"},
		`{"name":"plain"}`:   {jobs.CodeNotFound, "pipeline plain has no schedule"},
		`{"name":"nightly"}`: {jobs.CodeFailedPrecond, "part of pipeline nightly"},
	} {
		got := apiError(t, e.req(e.op, "gantry.api.schedules.delete", body))
		if got.Code != want.code || !strings.Contains(got.Message, want.says) {
			t.Errorf("%s: %s %q, want %s %q", body, got.Code, got.Message, want.code, want.says)
		}
	}
	var reply DeleteReply
	e.ok("gantry.api.schedules.delete", `{"name":"hourly-hello"}`, &reply)
	if !reply.Deleted || !slices.Equal(reply.Running, []string{pr.PipelineRunID}) {
		t.Fatalf("delete: %+v", reply)
	}
	var ss []ScheduleInfo
	e.ok("gantry.api.schedules.list", `{}`, &ss)
	if len(ss) != 1 || ss[0].Name != "nightly" {
		t.Errorf("schedules after delete: %+v", ss)
	}
	// The run it started goes on, and stays readable.
	var got jobs.PipelineRun
	e.ok("gantry.api.pipelines.get", fmt.Sprintf(`{"pipelineRunId":%q}`, pr.PipelineRunID), &got)
	if got.Status.Terminal() {
		t.Errorf("the schedule's run is %s after the delete, want it going on", got.Status)
	}
	if m := apiError(t, e.req(e.op, "gantry.api.schedules.delete", `{"name":"hourly-hello"}`)); m.Code != jobs.CodeNotFound {
		t.Errorf("delete again: %s %s", m.Code, m.Message)
	}
}
