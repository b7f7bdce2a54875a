package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// endedRun is newRun(i) ended with status at t (nil: not ended), with
// two tags, which go with it.
func endedRun(i int, status jobs.Status, at *time.Time, opts ...func(*jobs.Run)) *jobs.Run {
	return newRun(i, append([]func(*jobs.Run){func(r *jobs.Run) {
		r.Status = status
		r.FinishedAt = at
		r.Attempts[0].Status = status
		r.Tags = map[string]string{"team": "data", "run": r.RunID}
	}}, opts...)...)
}

// stageOf makes a run a stage run of the pipeline run pr.
func stageOf(pr string) func(*jobs.Run) {
	return func(r *jobs.Run) { r.Spec.Stage = &jobs.StageContext{PipelineRunID: pr, Stage: "a"} }
}

// pruneFixture is a store with, at t0 + 100 days: runs and pipeline runs
// that ended on day 1 (due under a 30-day retention), on day 90 (not
// due), and that have not ended.
type pruneFixture struct {
	db     *DB
	cutoff time.Time
	// due and kept are the ids of runs and pipeline runs a prune at
	// cutoff deletes, and those it keeps.
	due, kept []string
}

func newPruneFixture(t *testing.T, runs int) *pruneFixture {
	t.Helper()
	ctx := context.Background()
	db, _ := openDB(t)
	f := &pruneFixture{db: db, cutoff: t0.Add(70 * 24 * time.Hour)}
	day := func(d int) *time.Time { at := t0.Add(time.Duration(d) * 24 * time.Hour); return &at }
	add := func(due bool, r *jobs.Run) {
		t.Helper()
		mustCreate(t, db, r)
		if due {
			f.due = append(f.due, r.RunID)
		} else {
			f.kept = append(f.kept, r.RunID)
		}
	}
	i := 0
	next := func() int { i++; return i }
	for range runs {
		add(true, endedRun(next(), jobs.StatusSucceeded, day(1), func(r *jobs.Run) { r.IdempotencyKey = fmt.Sprint("key-", r.RunID) }))
	}
	add(true, endedRun(next(), jobs.StatusFailed, day(1)))
	add(true, endedRun(next(), jobs.StatusCanceled, day(2)))
	add(false, endedRun(next(), jobs.StatusSucceeded, day(90)))                   // ended since
	add(false, endedRun(next(), jobs.StatusRunning, nil))                         // created long ago, still going
	add(false, endedRun(next(), jobs.StatusQueued, nil))                          // still waiting
	add(true, endedRun(next(), jobs.StatusSucceeded, day(1), stageOf("pr-gone"))) // its pipeline run is gone
	// Stopped just after a worker took its job, it still holds its pool slot.
	add(false, endedRun(next(), jobs.StatusCanceled, day(1), func(r *jobs.Run) {
		r.Pool, r.PoolSlotAt, r.PoolSlotKept = "p", day(1), &jobs.SlotKeep{Attempt: 1, Worker: "w1"}
	}))

	pipelineRun := func(id string, status jobs.Status, at *time.Time, stageRuns ...*jobs.Run) {
		t.Helper()
		pr := &jobs.PipelineRun{PipelineRunID: id, Pipeline: "p", Version: 1, Status: jobs.StatusRunning, CreatedAt: t0,
			Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusRunning}}}
		for _, r := range stageRuns {
			mustCreate(t, db, r)
			pr.Stages[0].Runs = append(pr.Stages[0].Runs, jobs.StageRun{RunID: r.RunID})
		}
		if _, created, err := db.CreatePipelineRun(ctx, pr); err != nil || !created {
			t.Fatal(created, err)
		}
		if _, err := db.UpdatePipelineRun(ctx, id, func(pr *jobs.PipelineRun) bool {
			pr.Status, pr.FinishedAt = status, at
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Due, with its two stage runs.
	a, b := endedRun(next(), jobs.StatusSucceeded, day(1), stageOf("pr-due")), endedRun(next(), jobs.StatusFailed, day(1), stageOf("pr-due"))
	pipelineRun("pr-due", jobs.StatusFailed, day(1), a, b)
	f.due = append(f.due, "pr-due", a.RunID, b.RunID)
	// Retried before it ended: its earlier try's run, kept in its
	// document only, goes with it too.
	h := endedRun(next(), jobs.StatusFailed, day(1), stageOf("pr-due"))
	mustCreate(t, db, h)
	if _, err := db.UpdatePipelineRun(ctx, "pr-due", func(pr *jobs.PipelineRun) bool {
		pr.Stages[0].Try = 2
		pr.Stages[0].EarlierTries = []jobs.StageTry{{Try: 1, Status: jobs.StatusFailed, Runs: []jobs.StageRun{{RunID: h.RunID}}}}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	f.due = append(f.due, h.RunID)
	// Ended long ago, but one of its stage runs still goes (canceled
	// while it ran): kept whole.
	c, d := endedRun(next(), jobs.StatusSucceeded, day(1), stageOf("pr-stage-going")), endedRun(next(), jobs.StatusRunning, nil, stageOf("pr-stage-going"))
	pipelineRun("pr-stage-going", jobs.StatusCanceled, day(1), c, d)
	f.kept = append(f.kept, "pr-stage-going", c.RunID, d.RunID)
	// Still running: its stage run that ended long ago stays with it.
	e := endedRun(next(), jobs.StatusSucceeded, day(1), stageOf("pr-going"))
	pipelineRun("pr-going", jobs.StatusRunning, nil, e)
	f.kept = append(f.kept, "pr-going", e.RunID)
	// Ended since.
	g := endedRun(next(), jobs.StatusSucceeded, day(80), stageOf("pr-recent"))
	pipelineRun("pr-recent", jobs.StatusSucceeded, day(80), g)
	f.kept = append(f.kept, "pr-recent", g.RunID)
	return f
}

// present returns which of ids the store still holds.
func (f *pruneFixture) present(t *testing.T, ids []string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		var err error
		if jobs.IsPipelineRunID(id) {
			_, err = f.db.GetPipelineRun(context.Background(), id)
		} else {
			_, err = f.db.GetRun(context.Background(), id)
		}
		switch {
		case err == nil:
			out = append(out, id)
		case !errors.Is(err, jobs.ErrNotFound):
			t.Fatal(err)
		}
	}
	return out
}

// consistent checks what must hold after every batch: every stage run a
// pipeline run names is there, its earlier tries' included; no stage row
// outlives its pipeline run, and no stage run does either (but the one
// the fixture made without its pipeline run).
func (f *pruneFixture) consistent(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, id := range slices.Concat(f.due, f.kept) {
		r, err := f.db.GetRun(ctx, id)
		if jobs.IsPipelineRunID(id) || errors.Is(err, jobs.ErrNotFound) || r.Spec.Stage == nil || r.Spec.Stage.PipelineRunID == "pr-gone" {
			continue
		}
		if _, err := f.db.GetPipelineRun(ctx, r.Spec.Stage.PipelineRunID); errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("stage run %s outlives its pipeline run %s", id, r.Spec.Stage.PipelineRunID)
		}
	}
	var orphans int
	if err := f.db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM pipeline_stages s
		WHERE NOT EXISTS (SELECT 1 FROM pipeline_runs p WHERE p.run_id = s.pipeline_run_id)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d stage rows without their pipeline run", orphans)
	}
	// A run's tags go with it, in the same transaction; every run of the
	// fixture has two.
	var tagOrphans, untagged int
	if err := f.db.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM run_tags t WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id)),
		(SELECT COUNT(*) FROM runs r WHERE (SELECT COUNT(*) FROM run_tags t WHERE t.run_id = r.run_id) != 2)`).Scan(&tagOrphans, &untagged); err != nil {
		t.Fatal(err)
	}
	if tagOrphans != 0 || untagged != 0 {
		t.Errorf("%d tags without their run, %d runs without their two tags", tagOrphans, untagged)
	}
	prs, err := f.db.ListPipelineRuns(ctx, PipelineRunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range prs {
		for _, st := range pr.Stages {
			runs := st.Runs
			for _, try := range st.EarlierTries {
				runs = append(runs, try.Runs...)
			}
			for _, r := range runs {
				if _, err := f.db.GetRun(ctx, r.RunID); err != nil {
					t.Errorf("pipeline run %s names run %s: %v", pr.PipelineRunID, r.RunID, err)
				}
			}
		}
	}
}

// TestPruneHistory: a prune deletes the runs and pipeline runs that ended
// before its time, stage runs only with their pipeline run and pipeline
// runs only once all their stage runs are due, and nothing that has not
// ended; in transactions of at most Batch rows.
func TestPruneHistory(t *testing.T) {
	t.Parallel()
	f := newPruneFixture(t, 7)
	var batches []PruneCount
	// 4: a pipeline run goes whole, with its stage runs (pr-due has 3).
	n, err := f.db.PruneHistory(context.Background(), Prune{EndedBefore: f.cutoff, Batch: 4,
		Committed: func(c PruneCount) { batches = append(batches, c) }})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.present(t, f.due); len(got) != 0 {
		t.Errorf("left %v, due for deletion", got)
	}
	if got := f.present(t, f.kept); !slices.Equal(got, f.kept) {
		t.Errorf("kept %v, want %v", got, f.kept)
	}
	if want := (PruneCount{Runs: len(f.due) - 1, PipelineRuns: 1}); n != want {
		t.Errorf("counted %+v, want %+v", n, want)
	}
	var sum PruneCount
	for _, b := range batches {
		if b.Runs+b.PipelineRuns > 4 {
			t.Errorf("a batch deleted %+v, more than 4 rows", b)
		}
		sum.add(b)
	}
	if sum != n || len(batches) < 4 {
		t.Errorf("batches %+v: want at least 4 adding up to %+v", batches, n)
	}
	f.consistent(t)

	// Pruning again finds nothing; the idempotency key of a deleted run
	// no longer finds it: a submission with it makes a new run.
	if n, err := f.db.PruneHistory(context.Background(), Prune{EndedBefore: f.cutoff}); err != nil || n != (PruneCount{}) {
		t.Errorf("second prune: %+v, %v", n, err)
	}
	r := newRun(1000, func(r *jobs.Run) { r.IdempotencyKey = "key-" + f.due[0] })
	if _, created, err := f.db.CreateRun(context.Background(), r); err != nil || !created {
		t.Errorf("a run with a deleted run's key: created %v, %v", created, err)
	}
}

// TestPruneHistoryStoppedBetweenBatches: a prune stopped after any batch
// (a crash, a shutdown: each batch is its own transaction) leaves a
// consistent store, and the next one finishes the work.
func TestPruneHistoryStoppedBetweenBatches(t *testing.T) {
	t.Parallel()
	for stopAfter := 1; stopAfter <= 6; stopAfter++ {
		t.Run(fmt.Sprint(stopAfter), func(t *testing.T) {
			t.Parallel()
			f := newPruneFixture(t, 5)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			batches := 0
			_, err := f.db.PruneHistory(ctx, Prune{EndedBefore: f.cutoff, Batch: 2, Committed: func(PruneCount) {
				if batches++; batches == stopAfter {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("stopped prune: %v, want context.Canceled", err)
			}
			f.consistent(t)
			if got := f.present(t, f.kept); !slices.Equal(got, f.kept) {
				t.Errorf("kept %v, want %v", got, f.kept)
			}
			if _, err := f.db.PruneHistory(context.Background(), Prune{EndedBefore: f.cutoff, Batch: 2}); err != nil {
				t.Fatal(err)
			}
			if got := f.present(t, f.due); len(got) != 0 {
				t.Errorf("left %v after the next prune", got)
			}
			f.consistent(t)
		})
	}
}

// TestPruneHistoryIDBounds: only ids below the bounds are looked at.
func TestPruneHistoryIDBounds(t *testing.T) {
	t.Parallel()
	f := newPruneFixture(t, 3)
	// Runs 01RUN000001 to 01RUN000003 are below the bound; the other
	// due runs, and pr-due, are not.
	n, err := f.db.PruneHistory(context.Background(), Prune{EndedBefore: f.cutoff, RunsBelow: "01RUN000004", PipelineRunsBelow: "pr-a"})
	if err != nil {
		t.Fatal(err)
	}
	if n != (PruneCount{Runs: 3}) {
		t.Errorf("deleted %+v, want the 3 runs below the bound", n)
	}
	if got := f.present(t, []string{"01RUN000003", "01RUN000004", "pr-due"}); !slices.Equal(got, []string{"01RUN000004", "pr-due"}) {
		t.Errorf("present %v", got)
	}
}
