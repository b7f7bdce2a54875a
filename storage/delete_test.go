package storage

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func TestDeletePipelineKeepsItsRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	src := "name: p\nschedule: {cron: '@daily'}\nstages: [{name: a, taskDefinition: t}]\n"
	for i, s := range []string{src, src + "parameters: {x: y}\n"} { // two versions
		if _, _, err := db.PutPipeline(ctx, testPipeline(t, s), t0.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	other := testPipeline(t, "name: other\nschedule: {cron: '@hourly'}\nstages: [{name: a, taskDefinition: t}]\n")
	if _, _, err := db.PutPipeline(ctx, other, t0); err != nil {
		t.Fatal(err)
	}
	p, _ := db.GetPipeline(ctx, "p", 0)
	for _, r := range []struct {
		id     string
		status jobs.Status
	}{{"pr-1", jobs.StatusSucceeded}, {"pr-2", jobs.StatusRunning}, {"pr-3", jobs.StatusPending}} {
		pr := &jobs.PipelineRun{PipelineRunID: r.id, Pipeline: "p", Version: 2, Status: r.status, CreatedAt: t0, Spec: *p,
			Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusPending}}}
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}

	// A check that refuses deletes nothing, and sees the active runs.
	refused := errors.New("refused")
	var seen []string
	err := db.DeletePipeline(ctx, "p", func(active []string) error { seen = active; return refused })
	if !errors.Is(err, refused) || !slices.Equal(seen, []string{"pr-3", "pr-2"}) {
		t.Fatalf("refused delete: %v, active %v", err, seen)
	}
	if _, err := db.GetPipeline(ctx, "p", 1); err != nil {
		t.Fatalf("a refused delete deleted: %v", err)
	}

	if err := db.DeletePipeline(ctx, "p", nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{0, 1, 2} {
		if _, err := db.GetPipeline(ctx, "p", v); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("version %d after delete: %v", v, err)
		}
	}
	if ss, _ := db.ListSchedules(ctx); len(ss) != 1 || ss[0].Name != "other" {
		t.Errorf("schedules after delete: %+v", ss)
	}
	if ps, _ := db.ListPipelines(ctx); len(ps) != 1 || ps[0].Name != "other" {
		t.Errorf("pipelines after delete: %+v", ps)
	}
	if pr, err := db.GetPipelineRun(ctx, "pr-1"); err != nil || pr.Pipeline != "p" || len(pr.Spec.Stages) != 1 {
		t.Errorf("a past run after delete: %+v %v", pr, err)
	}
	if err := db.DeletePipeline(ctx, "p", nil); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("delete again: %v, want not found", err)
	}
	// The name can be applied again, from version 1.
	if got, _, err := db.PutPipeline(ctx, testPipeline(t, src), t0.Add(3*time.Hour)); err != nil || got.Version != 1 {
		t.Errorf("apply after delete: %+v %v", got, err)
	}
}
