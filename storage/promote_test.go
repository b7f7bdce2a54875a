package storage

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// PromotePipelineRuns reads a pipeline's queue (its latest version, its
// RUNNING runs counted by backfill, its PENDING runs) and writes what the
// decision changed in the same transaction; a decision that returns a run
// that was not waiting writes nothing.
func TestPromotePipelineRunsReadsTheQueueAndWritesTheDecision(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	p := testPipeline(t, "name: p\nmaxActiveRuns: 2\nstages: [{name: a, taskDefinition: t}]\n")
	// A run of a pipeline of the same name deleted before this one was
	// applied is not this pipeline's: neither counted nor started.
	add := func(id string, s jobs.Status, at time.Time, bf string) {
		t.Helper()
		pr := &jobs.PipelineRun{PipelineRunID: id, Pipeline: "p", Version: 1, Status: s, CreatedAt: at, Spec: *p,
			Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusPending}}}
		if bf != "" {
			pr.Backfill = &jobs.BackfillGroup{ID: bf, MaxParallel: 1}
		}
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	add("pr-0old", jobs.StatusRunning, t0.Add(-time.Hour), "")
	add("pr-0oldwait", jobs.StatusPending, t0.Add(-time.Hour), "")
	if _, _, err := db.PutPipeline(ctx, p, t0); err != nil {
		t.Fatal(err)
	}
	calls := 0
	none := func(q *PipelineRunQueue) []*jobs.PipelineRun { calls++; return nil }
	if got, err := db.PromotePipelineRuns(ctx, "p", none); err != nil || got != nil || calls != 0 {
		t.Fatalf("no PENDING run of p: %v %v, decide called %d times", got, err, calls)
	}
	add("pr-1", jobs.StatusRunning, t0.Add(time.Minute), "bf-1")
	add("pr-2", jobs.StatusPending, t0.Add(2*time.Minute), "")
	add("pr-3", jobs.StatusPending, t0.Add(3*time.Minute), "")
	add("pr-4", jobs.StatusSucceeded, t0.Add(4*time.Minute), "")

	var seen PipelineRunQueue
	got, err := db.PromotePipelineRuns(ctx, "p", func(q *PipelineRunQueue) []*jobs.PipelineRun {
		seen = *q
		q.Pending[0].Status = jobs.StatusRunning
		q.Pending[1].StatusReason = "waiting: 2 of 2"
		return q.Pending
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, pr := range seen.Pending {
		ids = append(ids, pr.PipelineRunID)
	}
	if seen.Pipeline == nil || seen.Pipeline.MaxActiveRuns == nil || *seen.Pipeline.MaxActiveRuns != 2 || seen.Running != 1 ||
		seen.ByBackfill["bf-1"] != 1 || len(seen.ByBackfill) != 1 || !slices.Equal(ids, []string{"pr-2", "pr-3"}) {
		t.Fatalf("queue: pipeline %+v running %d by backfill %v pending %v", seen.Pipeline, seen.Running, seen.ByBackfill, ids)
	}
	if len(got) != 2 {
		t.Fatalf("%d runs written, want 2", len(got))
	}
	if pr, _ := db.GetPipelineRun(ctx, "pr-2"); pr.Status != jobs.StatusRunning {
		t.Fatalf("pr-2 %s, want RUNNING", pr.Status)
	}
	if pr, _ := db.GetPipelineRun(ctx, "pr-3"); pr.Status != jobs.StatusPending || pr.StatusReason != "waiting: 2 of 2" {
		t.Fatalf("pr-3 %s %q", pr.Status, pr.StatusReason)
	}
	// The status column follows: the listings by status see it.
	if running, _ := db.ListPipelineRuns(ctx, PipelineRunFilter{Pipeline: "p", Current: true, Status: jobs.StatusRunning}); len(running) != 2 {
		t.Fatalf("%d RUNNING runs listed, want 2", len(running))
	}
	_, err = db.PromotePipelineRuns(ctx, "p", func(q *PipelineRunQueue) []*jobs.PipelineRun {
		if q.Running != 2 || len(q.Pending) != 1 {
			t.Errorf("second look: %d running, %d pending", q.Running, len(q.Pending))
		}
		q.Pending[0].Status = jobs.StatusRunning
		ghost := *q.Pending[0]
		ghost.PipelineRunID = "pr-0oldwait"
		return []*jobs.PipelineRun{q.Pending[0], &ghost}
	})
	if err == nil {
		t.Fatal("a decision starting a run that was not in the queue was written")
	}
	if pr, _ := db.GetPipelineRun(ctx, "pr-3"); pr.Status != jobs.StatusPending {
		t.Fatalf("pr-3 %s after a refused decision, want PENDING", pr.Status)
	}
	if pr, _ := db.GetPipelineRun(ctx, "pr-0oldwait"); pr.Status != jobs.StatusPending {
		t.Fatalf("the deleted pipeline's run %s", pr.Status)
	}
}
