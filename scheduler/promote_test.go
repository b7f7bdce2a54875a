package scheduler

import (
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func TestPromoteKeepsBothBounds(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) *time.Time {
		v := t0.Add(time.Duration(h) * time.Hour)
		return &v
	}
	n := func(v int) *int { return &v }
	// run is a PENDING run created at hour h; mods change it.
	run := func(id string, h int, mods ...func(*jobs.PipelineRun)) *jobs.PipelineRun {
		pr := &jobs.PipelineRun{PipelineRunID: id, Status: jobs.StatusPending, CreatedAt: *at(h)}
		for _, m := range mods {
			m(pr)
		}
		return pr
	}
	group := func(id string, max int, scheduled int) func(*jobs.PipelineRun) {
		return func(pr *jobs.PipelineRun) {
			pr.Backfill, pr.ScheduledTime = &jobs.BackfillGroup{ID: id, MaxParallel: max}, at(scheduled)
		}
	}
	prio := func(p jobs.Priority) func(*jobs.PipelineRun) { return func(pr *jobs.PipelineRun) { pr.Priority = p } }
	stopped := func(pr *jobs.PipelineRun) { pr.StopRequested = true }
	retried := func(h int) func(*jobs.PipelineRun) {
		return func(pr *jobs.PipelineRun) { pr.Retries, pr.RetriedAt = 1, at(h) }
	}
	tests := []struct {
		name    string
		q       Queue
		started []string
		reasons map[string]string // of the runs left waiting
	}{
		{"no bound: every run", Queue{Running: 5, Pending: []*jobs.PipelineRun{run("pr-b", 2), run("pr-a", 1)}},
			[]string{"pr-a", "pr-b"}, nil},
		{"maxActiveRuns 1, one running: none, each told", Queue{MaxActiveRuns: n(1), Running: 1,
			Pending: []*jobs.PipelineRun{run("pr-a", 1), run("pr-b", 2)}}, nil,
			map[string]string{"pr-a": "waiting: 1 of 1 active runs of sales (maxActiveRuns)",
				"pr-b": "waiting: 1 of 1 active runs of sales (maxActiveRuns)"}},
		{"maxActiveRuns 2, one running: the oldest", Queue{MaxActiveRuns: n(2), Running: 1,
			Pending: []*jobs.PipelineRun{run("pr-b", 2), run("pr-a", 1), run("pr-c", 3)}}, []string{"pr-a"},
			map[string]string{"pr-b": "waiting: 2 of 2 active runs of sales (maxActiveRuns)",
				"pr-c": "waiting: 2 of 2 active runs of sales (maxActiveRuns)"}},
		{"lowered below what runs: none, the count told", Queue{MaxActiveRuns: n(1), Running: 3,
			Pending: []*jobs.PipelineRun{run("pr-a", 1)}}, nil,
			map[string]string{"pr-a": "waiting: 3 of 1 active runs of sales (maxActiveRuns)"}},
		{"priority first, then the oldest", Queue{MaxActiveRuns: n(2),
			Pending: []*jobs.PipelineRun{run("pr-a", 1, prio(jobs.PriorityLow)), run("pr-b", 2), run("pr-c", 3, prio(jobs.PriorityHigh))}},
			[]string{"pr-c", "pr-b"}, map[string]string{"pr-a": "waiting: 2 of 2 active runs of sales (maxActiveRuns)"}},
		{"a retried run waits from its retry", Queue{MaxActiveRuns: n(1),
			Pending: []*jobs.PipelineRun{run("pr-a", 1, retried(5)), run("pr-b", 2)}}, []string{"pr-b"},
			map[string]string{"pr-a": "waiting: 1 of 1 active runs of sales (maxActiveRuns)"}},
		{"a stopped run is neither started nor counted", Queue{MaxActiveRuns: n(1),
			Pending: []*jobs.PipelineRun{run("pr-a", 1, stopped), run("pr-b", 2)}}, []string{"pr-b"}, nil},
		{"backfill alone: earliest scheduled first, up to maxParallel", Queue{ByBackfill: map[string]int{},
			Pending: []*jobs.PipelineRun{run("pr-c", 0, group("bf-1", 2, 3)), run("pr-a", 0, group("bf-1", 2, 1)), run("pr-b", 0, group("bf-1", 2, 2))}},
			[]string{"pr-a", "pr-b"}, map[string]string{"pr-c": "waiting: 2 of 2 active runs of backfill bf-1 (--max-parallel)"}},
		{"a full backfill lets other runs by", Queue{MaxActiveRuns: n(3), Running: 1, ByBackfill: map[string]int{"bf-1": 1},
			Pending: []*jobs.PipelineRun{run("pr-a", 0, group("bf-1", 1, 1)), run("pr-b", 1)}},
			[]string{"pr-b"}, map[string]string{"pr-a": "waiting: 1 of 1 active runs of backfill bf-1 (--max-parallel)"}},
		{"a retried backfilled run waits for maxActiveRuns only", Queue{MaxActiveRuns: n(2), Running: 1, ByBackfill: map[string]int{"bf-1": 1},
			Pending: []*jobs.PipelineRun{run("pr-a", 0, group("bf-1", 1, 1), retried(1))}}, []string{"pr-a"}, nil},
		{"both bounds: the smaller holds", Queue{MaxActiveRuns: n(1), ByBackfill: map[string]int{},
			Pending: []*jobs.PipelineRun{run("pr-a", 0, group("bf-1", 3, 1)), run("pr-b", 0, group("bf-1", 3, 2))}},
			[]string{"pr-a"}, map[string]string{"pr-b": "waiting: 1 of 1 active runs of sales (maxActiveRuns)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Pipeline = "sales"
			now := t0.Add(48 * time.Hour)
			changed := Promote(&tt.q, now)
			var started []string
			reasons := map[string]string{}
			for _, pr := range changed {
				switch pr.Status {
				case jobs.StatusRunning:
					started = append(started, pr.PipelineRunID)
					if pr.StatusReason != "" {
						t.Errorf("%s started with reason %q", pr.PipelineRunID, pr.StatusReason)
					}
					if pr.Retries > 0 && !pr.RetriedAt.Equal(now) {
						t.Errorf("%s retried: its clock not restarted at its start (%v)", pr.PipelineRunID, pr.RetriedAt)
					}
				default:
					reasons[pr.PipelineRunID] = pr.StatusReason
				}
			}
			if !slices.Equal(started, tt.started) {
				t.Errorf("started %v, want %v", started, tt.started)
			}
			if len(reasons) != len(tt.reasons) {
				t.Errorf("told %v, want %v", reasons, tt.reasons)
			}
			for id, want := range tt.reasons {
				if reasons[id] != want {
					t.Errorf("%s: reason %q, want %q", id, reasons[id], want)
				}
			}
			// Deciding again on what it left changes nothing.
			if again := Promote(&Queue{Pipeline: "sales", MaxActiveRuns: tt.q.MaxActiveRuns, Running: tt.q.Running + len(started),
				Pending: tt.q.Pending}, now); len(again) != 0 && tt.q.ByBackfill == nil {
				t.Errorf("a second decision changed %d runs", len(again))
			}
		})
	}
}
