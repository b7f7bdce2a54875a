package storage

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func TestPipelineRunsWithDataAreTheEndedOnesNotYetDeleted(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	for i, id := range []string{"pr-a", "pr-b", "pr-c"} {
		pr := &jobs.PipelineRun{PipelineRunID: id, Pipeline: "p", Version: 1, Status: jobs.StatusRunning,
			CreatedAt: t0, Stages: []jobs.StageState{}}
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			continue // pr-c still runs
		}
		end := t0.Add(time.Duration(i+1) * time.Hour)
		if _, err := db.UpdatePipelineRun(ctx, id, func(p *jobs.PipelineRun) bool {
			p.Status, p.FinishedAt = jobs.StatusSucceeded, &end
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.PipelineRunsWithData(ctx, t0.Add(90*time.Minute), 10)
	if err != nil || !slices.Equal(got, []string{"pr-a"}) {
		t.Fatalf("ended by 01:30: %v %v", got, err)
	}
	if got, _ = db.PipelineRunsWithData(ctx, t0.Add(5*time.Hour), 10); !slices.Equal(got, []string{"pr-a", "pr-b"}) {
		t.Fatalf("ended by 05:00: %v", got)
	}
	if err := db.MarkPipelineRunDataDeleted(ctx, []string{"pr-a"}, t0.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ = db.PipelineRunsWithData(ctx, t0.Add(5*time.Hour), 10); !slices.Equal(got, []string{"pr-b"}) {
		t.Fatalf("after deleting pr-a's: %v", got)
	}
}

func TestHasPipelineRunKey(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	pr := &jobs.PipelineRun{PipelineRunID: "pr-a", Pipeline: "p", Status: jobs.StatusRunning, CreatedAt: t0,
		IdempotencyKey: "trigger/p/pr-x", Stages: []jobs.StageState{}}
	if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.HasPipelineRunKey(ctx, "trigger/p/pr-x"); !ok || err != nil {
		t.Fatalf("stored key: %v %v", ok, err)
	}
	if ok, _ := db.HasPipelineRunKey(ctx, "trigger/p/pr-y"); ok {
		t.Fatal("unknown key found")
	}
}
