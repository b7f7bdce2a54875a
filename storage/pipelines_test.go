package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func testPipeline(t *testing.T, src string) *jobs.Pipeline {
	t.Helper()
	p, err := jobs.ParsePipeline([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPipelinesAreVersioned(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	v1 := testPipeline(t, "name: p\nschedule: {cron: '@daily', suspend: true}\nstages: [{name: a, taskDefinition: t}]\n")
	got, changed, err := db.PutPipeline(ctx, v1, t0)
	if err != nil || !changed || got.Version != 1 {
		t.Fatalf("first apply: %+v %v %v", got, changed, err)
	}
	if got, changed, _ = db.PutPipeline(ctx, v1, t0.Add(time.Hour)); changed || got.Version != 1 {
		t.Fatalf("same file again: version %d changed %v", got.Version, changed)
	}
	ss, _ := db.ListSchedules(ctx)
	if len(ss) != 1 || !ss[0].Suspended {
		t.Fatalf("schedules %+v", ss)
	}
	db.SetScheduleLastFire(ctx, "p", t0.Add(time.Hour))
	db.SetScheduleLastFire(ctx, "p", t0) // never backwards
	if err := db.SetScheduleSuspended(ctx, "p", false); err != nil {
		t.Fatal(err)
	}
	ss, _ = db.ListSchedules(ctx)
	if ss[0].Suspended || !ss[0].LastFire.Equal(t0.Add(time.Hour)) {
		t.Fatalf("schedule state %+v", ss[0])
	}
	v2 := testPipeline(t, "name: p\nstages: [{name: a, taskDefinition: t}, {name: b, taskDefinition: t, dependsOn: [a]}]\n")
	if got, changed, _ = db.PutPipeline(ctx, v2, t0.Add(2*time.Hour)); !changed || got.Version != 2 {
		t.Fatalf("changed file: version %d changed %v", got.Version, changed)
	}
	latest, _ := db.GetPipeline(ctx, "p", 0)
	old, _ := db.GetPipeline(ctx, "p", 1)
	if latest.Version != 2 || len(latest.Stages) != 2 || old.Version != 1 || len(old.Stages) != 1 {
		t.Fatalf("latest %d/%d old %d/%d", latest.Version, len(latest.Stages), old.Version, len(old.Stages))
	}
	if _, err := db.GetPipeline(ctx, "nope", 0); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("missing pipeline: %v", err)
	}
	if ps, _ := db.ListPipelines(ctx); len(ps) != 1 || ps[0].Version != 2 {
		t.Fatalf("list %+v", ps)
	}
	// The version without a schedule drops the schedule's state; added
	// again, it starts afresh, with no last fire to catch up from.
	if ss, _ = db.ListSchedules(ctx); len(ss) != 0 {
		t.Fatalf("schedules of a pipeline without one: %+v", ss)
	}
	v3 := testPipeline(t, "name: p\nschedule: {cron: '@daily', misfire: runOnce}\nstages: [{name: a, taskDefinition: t}]\n")
	if got, changed, _ = db.PutPipeline(ctx, v3, t0.Add(3*time.Hour)); !changed || got.Version != 3 {
		t.Fatalf("schedule again: version %d changed %v", got.Version, changed)
	}
	if ss, _ = db.ListSchedules(ctx); len(ss) != 1 || !ss[0].LastFire.IsZero() || ss[0].Suspended {
		t.Fatalf("schedule added again: %+v", ss)
	}
}

func TestPipelineRunsKeepStagesAndKeys(t *testing.T) {
	ctx := context.Background()
	db, path := openDB(t)
	p := testPipeline(t, "name: p\nstages: [{name: a, taskDefinition: t}]\n")
	pr := &jobs.PipelineRun{PipelineRunID: "pr-1", Pipeline: "p", Version: 1, Status: jobs.StatusRunning, CreatedAt: t0,
		IdempotencyKey: "schedule/p/x", Spec: *p, Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusPending}}}
	if _, created, err := db.CreatePipelineRun(ctx, pr); err != nil || !created {
		t.Fatal(created, err)
	}
	dup := *pr
	dup.PipelineRunID = "pr-2"
	if got, created, err := db.CreatePipelineRun(ctx, &dup); err != nil || created || got.PipelineRunID != "pr-1" {
		t.Fatalf("same key: %v %v %v", got, created, err)
	}
	if _, err := db.UpdatePipelineRun(ctx, "pr-1", func(p *jobs.PipelineRun) bool {
		p.Stages[0].Status = jobs.StatusRunning
		p.Stages[0].Runs = []jobs.StageRun{{RunID: "r1"}, {RunID: "r2"}}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.GetPipelineRun(ctx, "pr-1")
	if err != nil || got.Stages[0].Status != jobs.StatusRunning || len(got.Stages[0].Runs) != 2 {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	var ids, status string
	db.r.QueryRowContext(ctx, `SELECT run_ids, status FROM pipeline_stages WHERE pipeline_run_id = 'pr-1' AND stage = 'a'`).Scan(&ids, &status)
	if ids != "r1 r2" || status != "RUNNING" {
		t.Fatalf("stage row %q %q", ids, status)
	}
	active, _ := db.ListPipelineRuns(ctx, PipelineRunFilter{Pipeline: "p", Active: true})
	if len(active) != 1 {
		t.Fatalf("active %d", len(active))
	}
}

// TestCurrentRunsOfAPipelineAppliedAgain: a pipeline deleted and applied
// again begins when its new first version is stored (PipelineCreated);
// listing the current runs leaves out the deleted one's.
func TestCurrentRunsOfAPipelineAppliedAgain(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	run := func(id string, at time.Time) {
		t.Helper()
		pr := &jobs.PipelineRun{PipelineRunID: id, Pipeline: "p", Version: 1, Status: jobs.StatusSucceeded, CreatedAt: at,
			Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusSucceeded}}}
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(f PipelineRunFilter) (out []string) {
		t.Helper()
		runs, err := db.ListPipelineRuns(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range runs {
			out = append(out, pr.PipelineRunID)
		}
		return out
	}
	v1 := testPipeline(t, "name: p\nstages: [{name: a, taskDefinition: t}]\n")
	v2 := testPipeline(t, "name: p\nstages: [{name: a, taskDefinition: t2}]\n")
	db.PutPipeline(ctx, v1, t0)
	run("pr-1", t0.Add(time.Minute))
	db.PutPipeline(ctx, v2, t0.Add(time.Hour)) // a second version of the same pipeline
	run("pr-2", t0.Add(2*time.Hour))
	if got, err := db.PipelineCreated(ctx, "p"); err != nil || !got.Equal(t0) {
		t.Fatalf("PipelineCreated = %v, %v; want its first version's %v", got, err, t0)
	}
	if err := db.DeletePipeline(ctx, "p", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PipelineCreated(ctx, "p"); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("PipelineCreated of a deleted pipeline: %v", err)
	}
	db.PutPipeline(ctx, v1, t0.Add(3*time.Hour))
	run("pr-3", t0.Add(4*time.Hour))
	if got, err := db.PipelineCreated(ctx, "p"); err != nil || !got.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("PipelineCreated after applying again = %v, %v", got, err)
	}
	if got := ids(PipelineRunFilter{Pipeline: "p", Current: true}); !slices.Equal(got, []string{"pr-3"}) {
		t.Fatalf("current runs %v, want [pr-3]", got)
	}
	if got := ids(PipelineRunFilter{Pipeline: "p"}); !slices.Equal(got, []string{"pr-3", "pr-2", "pr-1"}) {
		t.Fatalf("every run %v", got)
	}
}

// TestLastPipelineEnds: the latest end of each pipeline by status, from
// runs of its current incarnation only, none for a status no run ended with.
func TestLastPipelineEnds(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	for _, src := range []string{"name: p\nstages: [{name: a, taskDefinition: t}]\n", "name: q\nstages: [{name: a, taskDefinition: t}]\n"} {
		if _, _, err := db.PutPipeline(ctx, testPipeline(t, src), t0); err != nil {
			t.Fatal(err)
		}
	}
	end := func(id, pipeline string, st jobs.Status, at time.Time) {
		t.Helper()
		pr := &jobs.PipelineRun{PipelineRunID: id, Pipeline: pipeline, Version: 1, Status: jobs.StatusRunning, CreatedAt: at.Add(-time.Minute),
			Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusRunning}}}
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			t.Fatal(err)
		}
		if st == jobs.StatusRunning {
			return
		}
		if _, err := db.UpdatePipelineRun(ctx, id, func(pr *jobs.PipelineRun) bool {
			pr.Status, pr.FinishedAt = st, &at
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	end("pr-1", "p", jobs.StatusSucceeded, t0.Add(3*time.Hour))
	end("pr-2", "p", jobs.StatusSucceeded, t0.Add(1*time.Hour)) // created later, ended earlier
	end("pr-3", "p", jobs.StatusFailed, t0.Add(2*time.Hour))
	end("pr-4", "p", jobs.StatusRunning, t0.Add(4*time.Hour))
	end("pr-5", "q", jobs.StatusCanceled, t0.Add(time.Hour))
	end("pr-6", "gone", jobs.StatusSucceeded, t0.Add(time.Hour)) // no such pipeline
	got, err := db.LastPipelineEnds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []PipelineEnd{
		{"p", jobs.StatusFailed, t0.Add(2 * time.Hour)},
		{"p", jobs.StatusSucceeded, t0.Add(3 * time.Hour)},
		{"q", jobs.StatusCanceled, t0.Add(time.Hour)},
	}
	if !slices.EqualFunc(got, want, func(a, b PipelineEnd) bool {
		return a.Pipeline == b.Pipeline && a.Status == b.Status && a.At.Equal(b.At)
	}) {
		t.Fatalf("LastPipelineEnds = %+v, want %+v", got, want)
	}

	// q deleted and applied again: its earlier run no longer counts.
	if err := db.DeletePipeline(ctx, "q", func([]string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PutPipeline(ctx, testPipeline(t, "name: q\nstages: [{name: a, taskDefinition: t}]\n"), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err = db.LastPipelineEnds(ctx); err != nil || len(got) != 2 || got[1].Pipeline != "p" {
		t.Fatalf("after q applied again: %+v, %v; want p's two only", got, err)
	}
}

// TestPreviewPipelineAgreesWithPut: the preview says what PutPipeline then
// does (a first version, an unchanged one, the next), and stores nothing:
// no version, no schedule row.
func TestPreviewPipelineAgreesWithPut(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	v1 := testPipeline(t, "name: p\nschedule: {cron: '@daily', suspend: true}\nstages: [{name: a, taskDefinition: t}]\n")
	out, prev, changed, err := db.PreviewPipeline(ctx, v1, t0)
	if err != nil || !changed || prev != nil || out.Version != 1 || !out.CreatedAt.Equal(t0) {
		t.Fatalf("preview of a new pipeline: %+v %+v %v %v", out, prev, changed, err)
	}
	if _, err := db.GetPipeline(ctx, "p", 0); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("the preview stored the pipeline: %v", err)
	}
	if ss, _ := db.ListSchedules(ctx); len(ss) != 0 {
		t.Fatalf("the preview stored a schedule: %+v", ss)
	}
	if _, _, err := db.PutPipeline(ctx, v1, t0); err != nil {
		t.Fatal(err)
	}
	out, prev, changed, err = db.PreviewPipeline(ctx, v1, t0.Add(time.Hour))
	if err != nil || changed || out.Version != 1 || prev == nil || prev.Version != 1 {
		t.Fatalf("preview of the same file: %+v %+v %v %v", out, prev, changed, err)
	}
	v2 := testPipeline(t, "name: p\nstages: [{name: a, taskDefinition: t}, {name: b, taskDefinition: t}]\n")
	out, prev, changed, err = db.PreviewPipeline(ctx, v2, t0.Add(time.Hour))
	if err != nil || !changed || out.Version != 2 || prev.Version != 1 || len(out.Stages) != 2 {
		t.Fatalf("preview of a change: %+v %+v %v %v", out, prev, changed, err)
	}
	if latest, _ := db.GetPipeline(ctx, "p", 0); latest.Version != 1 {
		t.Fatalf("the preview stored version %d", latest.Version)
	}
	if ss, _ := db.ListSchedules(ctx); len(ss) != 1 || !ss[0].Suspended {
		t.Fatalf("the preview of a version without a schedule changed it: %+v", ss)
	}
	got, changed, err := db.PutPipeline(ctx, v2, t0.Add(time.Hour))
	if err != nil || !changed || got.Version != out.Version {
		t.Fatalf("put after the preview: %+v %v %v, previewed version %d", got, changed, err, out.Version)
	}
}

// TestCreatePipelineRunKeyConcurrently: requests racing with one
// idempotency key make one pipeline run, every one of them getting it:
// the key is looked up in the insert's transaction, on the one writer.
func TestCreatePipelineRunKeyConcurrently(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	p := testPipeline(t, "name: p\nparameters: {c: {required: true}}\nstages: [{name: a, taskDefinition: t}]\n")
	const n = 16
	var wg sync.WaitGroup
	ids := make([]string, n)
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr := &jobs.PipelineRun{PipelineRunID: fmt.Sprintf("pr-%02d", i), Pipeline: "p", Version: 1, Status: jobs.StatusRunning,
				CreatedAt: t0, IdempotencyKey: "run/p/reload-42", Parameters: jobs.Params{"c": fmt.Sprint(i)}, Spec: *p,
				Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusPending}}}
			got, made, err := db.CreatePipelineRun(ctx, pr)
			if err == nil {
				ids[i], created[i] = got.PipelineRunID, made
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	made := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if created[i] {
			made++
		}
		if ids[i] != ids[0] {
			t.Errorf("request %d got %s, request 0 %s", i, ids[i], ids[0])
		}
	}
	if made != 1 {
		t.Errorf("%d requests created a run, want 1", made)
	}
	var rows int
	db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM pipeline_runs WHERE pipeline = 'p'`).Scan(&rows)
	if rows != 1 {
		t.Errorf("%d pipeline runs stored, want 1", rows)
	}
	// Another key, or none, makes another run.
	other := &jobs.PipelineRun{PipelineRunID: "pr-99", Pipeline: "p", Version: 1, Status: jobs.StatusRunning, CreatedAt: t0,
		IdempotencyKey: "run/p/reload-43", Spec: *p, Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusPending}}}
	if _, made, err := db.CreatePipelineRun(ctx, other); err != nil || !made {
		t.Errorf("another key: created %v, %v", made, err)
	}
}
