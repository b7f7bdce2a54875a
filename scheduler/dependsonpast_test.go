package scheduler

import (
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// Promote with dependsOnPast: a run with a scheduled time starts only once
// its previous run SUCCEEDED (or it has none); held, it takes no place and
// says why; a run without a scheduled time is not held.
func TestPromoteDependsOnPast(t *testing.T) {
	day := func(d int) *time.Time {
		v := time.Date(2026, 12, d, 2, 0, 0, 0, time.UTC)
		return &v
	}
	n := func(v int) *int { return &v }
	// run is a run scheduled on day d (0: none) with status s, created
	// at hour d so that the older days wait longest.
	run := func(id string, d int, s jobs.Status) *jobs.PipelineRun {
		pr := &jobs.PipelineRun{PipelineRunID: id, Pipeline: "sales", Status: s, CreatedAt: day(1).Add(time.Duration(d) * time.Hour)}
		if d > 0 {
			pr.ScheduledTime = day(d)
		}
		return pr
	}
	const wait1 = "waiting for pr-1 (scheduled 2026-12-01T02:00:00Z) to succeed (dependsOnPast): "
	const wait2 = "waiting for pr-2 (scheduled 2026-12-02T02:00:00Z) to succeed (dependsOnPast): "
	tests := []struct {
		name    string
		q       func() Queue
		started []string
		reasons map[string]string
	}{
		{"the first run has no past: it starts", func() Queue {
			return Queue{DependsOnPast: true, Pending: []*jobs.PipelineRun{run("pr-1", 1, jobs.StatusPending)}}
		}, []string{"pr-1"}, nil},
		{"previous SUCCEEDED: it starts", func() Queue {
			return Queue{DependsOnPast: true, Pending: []*jobs.PipelineRun{run("pr-2", 2, jobs.StatusPending)},
				Previous: map[string]*jobs.PipelineRun{"pr-2": run("pr-1", 1, jobs.StatusSucceeded)}}
		}, []string{"pr-2"}, nil},
		{"previous FAILED: it waits, told to retry it", func() Queue {
			return Queue{DependsOnPast: true, Pending: []*jobs.PipelineRun{run("pr-2", 2, jobs.StatusPending)},
				Previous: map[string]*jobs.PipelineRun{"pr-2": run("pr-1", 1, jobs.StatusFailed)}}
		}, nil, map[string]string{"pr-2": wait1 + "it FAILED; gantry pipeline retry pr-1 runs it again"}},
		{"previous CANCELED: it waits, told to retry it", func() Queue {
			return Queue{DependsOnPast: true, Pending: []*jobs.PipelineRun{run("pr-2", 2, jobs.StatusPending)},
				Previous: map[string]*jobs.PipelineRun{"pr-2": run("pr-1", 1, jobs.StatusCanceled)}}
		}, nil, map[string]string{"pr-2": wait1 + "it was CANCELED; gantry pipeline retry pr-1 runs it again"}},
		{"previous RUNNING: it waits, taking no place", func() Queue {
			return Queue{DependsOnPast: true, MaxActiveRuns: n(2), Running: 1,
				Pending:  []*jobs.PipelineRun{run("pr-2", 2, jobs.StatusPending), run("pr-m", 0, jobs.StatusPending)},
				Previous: map[string]*jobs.PipelineRun{"pr-2": run("pr-1", 1, jobs.StatusRunning)}}
		}, []string{"pr-m"}, map[string]string{"pr-2": wait1 + "it is RUNNING"}},
		{"dependsOnPast off: the previous run does not matter", func() Queue {
			return Queue{Pending: []*jobs.PipelineRun{run("pr-2", 2, jobs.StatusPending)},
				Previous: map[string]*jobs.PipelineRun{"pr-2": run("pr-1", 1, jobs.StatusFailed)}}
		}, []string{"pr-2"}, nil},
		{"a backfill: the first starts, each later one waits for the one before, told it runs", func() Queue {
			p1, p2, p3 := run("pr-1", 1, jobs.StatusPending), run("pr-2", 2, jobs.StatusPending), run("pr-3", 3, jobs.StatusPending)
			// Newest first, so that the later days are looked at before
			// the day they wait for starts.
			return Queue{DependsOnPast: true, Pending: []*jobs.PipelineRun{p3, p2, p1},
				Previous: map[string]*jobs.PipelineRun{"pr-2": p1, "pr-3": p2}}
		}, []string{"pr-1"}, map[string]string{"pr-2": wait1 + "it is RUNNING", "pr-3": wait2 + "it is PENDING"}},
		{"maxActiveRuns 2 with a backfill: still one at a time", func() Queue {
			p1, p2, p3 := run("pr-1", 1, jobs.StatusPending), run("pr-2", 2, jobs.StatusPending), run("pr-3", 3, jobs.StatusPending)
			return Queue{DependsOnPast: true, MaxActiveRuns: n(2), Pending: []*jobs.PipelineRun{p1, p2, p3},
				Previous: map[string]*jobs.PipelineRun{"pr-2": p1, "pr-3": p2}}
		}, []string{"pr-1"}, map[string]string{"pr-2": wait1 + "it is RUNNING", "pr-3": wait2 + "it is PENDING"}},
		{"held by its past before by maxActiveRuns: the reason is the past's", func() Queue {
			return Queue{DependsOnPast: true, MaxActiveRuns: n(1), Running: 1, Pending: []*jobs.PipelineRun{run("pr-2", 2, jobs.StatusPending)},
				Previous: map[string]*jobs.PipelineRun{"pr-2": run("pr-1", 1, jobs.StatusFailed)}}
		}, nil, map[string]string{"pr-2": wait1 + "it FAILED; gantry pipeline retry pr-1 runs it again"}},
		{"its past succeeded, but no place: maxActiveRuns' reason", func() Queue {
			return Queue{Pipeline: "sales", DependsOnPast: true, MaxActiveRuns: n(1), Running: 1, Pending: []*jobs.PipelineRun{run("pr-2", 2, jobs.StatusPending)},
				Previous: map[string]*jobs.PipelineRun{"pr-2": run("pr-1", 1, jobs.StatusSucceeded)}}
		}, nil, map[string]string{"pr-2": "waiting: 1 of 1 active runs of sales (maxActiveRuns)"}},
		{"a stopped waiting run is left to its advance, the next told it is being stopped", func() Queue {
			p1, p2 := run("pr-1", 1, jobs.StatusPending), run("pr-2", 2, jobs.StatusPending)
			p1.StopRequested = true
			return Queue{DependsOnPast: true, Pending: []*jobs.PipelineRun{p1, p2}, Previous: map[string]*jobs.PipelineRun{"pr-2": p1}}
		}, nil, map[string]string{"pr-2": wait1 + "it is being stopped"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q()
			changed := Promote(&q, time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC))
			var started []string
			reasons := map[string]string{}
			for _, pr := range changed {
				if pr.Status == jobs.StatusRunning {
					started = append(started, pr.PipelineRunID)
				} else {
					reasons[pr.PipelineRunID] = pr.StatusReason
				}
			}
			if !slices.Equal(started, tc.started) {
				t.Errorf("started %v, want %v", started, tc.started)
			}
			for id, want := range tc.reasons {
				if reasons[id] != want {
					t.Errorf("%s: reason %q, want %q", id, reasons[id], want)
				}
			}
			if len(reasons) != len(tc.reasons) {
				t.Errorf("told %v, want %v", reasons, tc.reasons)
			}
			// A second promotion over the same queue changes nothing: the
			// reasons stand, so no event is published again.
			if again := Promote(&q, time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)); len(again) != 0 && len(tc.started) == 0 {
				t.Errorf("promoted again: %d runs changed", len(again))
			}
		})
	}
}
