package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/storage"
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

// TestPipelineAppliedAgainIsAnother: after a forced delete and an apply
// of the same name, a backfill of a time the deleted pipeline ran runs
// the new pipeline (it returned the deleted one's run: ids and keys
// derived from the name and the time only), again after a restart, and
// `pipeline runs` lists only the new pipeline's runs. A pipeline never
// deleted keeps the ids and keys it had.
func TestPipelineAppliedAgainIsAnother(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	const backfill = `{"name":"sales","from":"2026-01-01T00:00:00Z","to":"2026-01-01T00:00:00Z"}`
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.apply("name: sales\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: old, taskDefinition: hello}]\n")
	var old []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", backfill, &old)
	if id, _ := scheduledRunID("sales", at); len(old) != 1 || old[0].PipelineRunID != id || old[0].IdempotencyKey != ScheduleKey("sales", at) {
		t.Fatalf("first pipeline's run %s key %q: want the id %s and key of name and time", old[0].PipelineRunID, old[0].IdempotencyKey, id)
	}
	e.ok("gantry.api.pipelines.delete", `{"name":"sales","force":true}`, nil)

	e.apply("name: sales\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: new, taskDefinition: hello}]\n")
	var again []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", backfill, &again)
	if len(again) != 1 {
		t.Fatalf("backfill: %d runs", len(again))
	}
	got := again[0]
	if got.PipelineRunID == old[0].PipelineRunID || got.Stages[0].Name != "new" || !strings.HasPrefix(got.IdempotencyKey, "schedule/sales@") {
		t.Fatalf("backfill of the pipeline applied again: run %s (%s, stage %q, key %q), the deleted pipeline's was %s",
			got.PipelineRunID, got.Status, got.Stages[0].Name, got.IdempotencyKey, old[0].PipelineRunID)
	}
	// The time keeps its new run, through a restart.
	e.stop()
	e.startServer()
	e.waitAll()
	e.ok("gantry.api.pipelines.backfill", backfill, &again)
	if len(again) != 1 || again[0].PipelineRunID != got.PipelineRunID {
		t.Fatalf("backfill again after a restart: %s, want %s", again[0].PipelineRunID, got.PipelineRunID)
	}
	// Only the new pipeline's runs are its runs; the deleted one's stays
	// readable by id.
	if runs := e.pipelineRuns("sales"); len(runs) != 1 || runs[0].PipelineRunID != got.PipelineRunID {
		t.Fatalf("pipeline runs sales: %d runs, the first %s; want only %s", len(runs), runs[0].PipelineRunID, got.PipelineRunID)
	}
	var kept jobs.PipelineRun
	e.ok("gantry.api.pipelines.get", fmt.Sprintf(`{"pipelineRunId":%q}`, old[0].PipelineRunID), &kept)
	if kept.Stages[0].Name != "old" || kept.Status != jobs.StatusCanceled {
		t.Errorf("the deleted pipeline's run: stage %q %s", kept.Stages[0].Name, kept.Status)
	}
}

// TestScheduleFireOfAPipelineAppliedAgain: the cron's fire of a time the
// deleted pipeline of the same name ran starts a run of the new pipeline.
func TestScheduleFireOfAPipelineAppliedAgain(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	s := New(db, q)
	call := func(f func(context.Context, []byte) (any, error), body string) {
		t.Helper()
		if _, err := f(ctx, []byte(body)); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	apply := func(src string) {
		t.Helper()
		body, _ := json.Marshal(map[string][]byte{"data": []byte(src)})
		call(s.apiPipelineApply, string(body))
	}
	call(s.apiRegisterTaskDef, helloTaskDef)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	apply("name: sales\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: old, taskDefinition: hello}]\n")
	old, err := pipelineFirer{s}.Fire(ctx, "sales", at)
	if err != nil {
		t.Fatal(err)
	}
	call(s.apiPipelineDelete, `{"name":"sales","force":true}`)
	apply("name: sales\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: new, taskDefinition: hello}]\n")
	for range 2 {
		pr, err := pipelineFirer{s}.Fire(ctx, "sales", at)
		if err != nil {
			t.Fatal(err)
		}
		if pr.PipelineRunID == old.PipelineRunID || pr.Stages[0].Name != "new" {
			t.Fatalf("fire of the pipeline applied again: run %s (stage %q), the deleted pipeline's was %s",
				pr.PipelineRunID, pr.Stages[0].Name, old.PipelineRunID)
		}
	}
	if runs, err := db.ListPipelineRuns(ctx, storage.PipelineRunFilter{Pipeline: "sales", Current: true}); err != nil || len(runs) != 1 {
		t.Fatalf("runs of the new pipeline: %d, %v; want one, fired twice", len(runs), err)
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

// TestScheduleOfAPipelineWithoutOne: trigger, suspend and resume of a
// pipeline that has no schedule say so, and what to do instead; of a name
// that is no pipeline at all, only that it is not found.
func TestScheduleOfAPipelineWithoutOne(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: plain\nstages: [{name: only, taskDefinition: hello}]\n")
	for _, ep := range []string{"trigger", "suspend", "resume"} {
		got := apiError(t, e.req(e.op, "gantry.api.schedules."+ep, `{"name":"plain"}`))
		want := "schedule plain: pipeline plain has no schedule: run it now with gantry pipeline run plain, or add schedule: to its file and apply it"
		if got.Code != jobs.CodeNotFound || got.Message != want {
			t.Errorf("%s plain: %s %q, want %s %q", ep, got.Code, got.Message, jobs.CodeNotFound, want)
		}
		got = apiError(t, e.req(e.op, "gantry.api.schedules."+ep, `{"name":"nosuch"}`))
		if got.Code != jobs.CodeNotFound || got.Message != "schedule nosuch: not found" {
			t.Errorf("%s nosuch: %s %q", ep, got.Code, got.Message)
		}
	}
}
