package scheduler

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func TestTriggeredFollowsConditions(t *testing.T) {
	ps := []jobs.Pipeline{
		{Name: "report", Triggers: []jobs.Trigger{{Pipeline: "sales"}}},
		{Name: "alert", Triggers: []jobs.Trigger{{Pipeline: "sales", On: jobs.CondFailure}}},
		{Name: "audit", Triggers: []jobs.Trigger{{Pipeline: "sales", On: jobs.CondComplete}}},
		{Name: "other", Triggers: []jobs.Trigger{{Pipeline: "stock"}}},
		{Name: "sales"},
	}
	for s, want := range map[jobs.Status][]string{
		jobs.StatusSucceeded: {"audit", "report"},
		jobs.StatusFailed:    {"alert", "audit"},
		jobs.StatusCanceled:  nil,
	} {
		if got := Triggered(ps, "sales", s); !slices.Equal(got, want) {
			t.Errorf("sales %s: got %v, want %v", s, got, want)
		}
	}
}

func TestStoppedPendingRunEndsCanceledWithoutStarting(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	p, err := jobs.ParsePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	pr := NewPipelineRun(p, "pr-1", nil, time.Now())
	pr.Status = jobs.StatusPending
	f.prs[pr.PipelineRunID] = pr
	ctx := context.Background()
	if got, _ := d.Advance(ctx, "pr-1"); got.Status != jobs.StatusPending || len(f.order) != 0 {
		t.Fatalf("a pending run advanced: %s, %d runs", got.Status, len(f.order))
	}
	got, err := d.Stop(ctx, "pr-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != jobs.StatusCanceled || got.StartedAt != nil || got.StageState("a").Status != jobs.StatusCanceled || len(f.order) != 0 {
		t.Fatalf("stopped pending run: %s started=%v stages %v runs %d", got.Status, got.StartedAt, got.StageStatuses(), len(f.order))
	}
}
