package scheduler

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func TestToPromoteKeepsAtMostMaxParallelActive(t *testing.T) {
	at := func(h int) *time.Time {
		v := time.Date(2026, 11, 1, h, 0, 0, 0, time.UTC)
		return &v
	}
	run := func(id string, s jobs.Status, h int) jobs.PipelineRun {
		return jobs.PipelineRun{PipelineRunID: id, Status: s, ScheduledTime: at(h)}
	}
	stopped := run("pr-s", jobs.StatusPending, 0)
	stopped.StopRequested = true
	tests := []struct {
		name string
		runs []jobs.PipelineRun
		max  int
		want []string
	}{
		{"all pending, max 2: the two earliest", []jobs.PipelineRun{run("pr-c", jobs.StatusPending, 3),
			run("pr-a", jobs.StatusPending, 1), run("pr-b", jobs.StatusPending, 2)}, 2, []string{"pr-a", "pr-b"}},
		{"one active, max 2: one more", []jobs.PipelineRun{run("pr-a", jobs.StatusRunning, 1),
			run("pr-b", jobs.StatusPending, 2), run("pr-c", jobs.StatusPending, 3)}, 2, []string{"pr-b"}},
		{"full: none", []jobs.PipelineRun{run("pr-a", jobs.StatusRunning, 1),
			run("pr-b", jobs.StatusRunning, 2), run("pr-c", jobs.StatusPending, 3)}, 2, []string{}},
		{"ended runs free their place", []jobs.PipelineRun{run("pr-a", jobs.StatusSucceeded, 1),
			run("pr-b", jobs.StatusFailed, 2), run("pr-c", jobs.StatusPending, 3)}, 1, []string{"pr-c"}},
		{"no bound: every pending run", []jobs.PipelineRun{run("pr-a", jobs.StatusRunning, 1),
			run("pr-b", jobs.StatusPending, 2), run("pr-c", jobs.StatusPending, 3)}, 0, []string{"pr-b", "pr-c"}},
		{"a stopped pending run is not started", []jobs.PipelineRun{stopped, run("pr-b", jobs.StatusPending, 2)},
			1, []string{"pr-b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ToPromote(tt.runs, tt.max); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

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
