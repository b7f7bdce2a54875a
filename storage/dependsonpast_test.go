package storage

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// With dependsOnPast, PromotePipelineRuns gives each PENDING run that has a
// scheduled time its previous run: the latest scheduled before it, runs
// without a scheduled time and those of a pipeline of the same name
// deleted before passed over; a previous run PENDING too is the element
// of Pending itself.
func TestPromotePipelineRunsPreviousRuns(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	p := testPipeline(t, "name: p\ndependsOnPast: true\nstages: [{name: a, taskDefinition: t}]\n")
	day := func(d int) *time.Time {
		v := time.Date(2026, 12, d, 2, 0, 0, 0, time.UTC)
		return &v
	}
	// Ids sort as the server's do: a scheduled run's by its time, a
	// manual run's by its creation.
	add := func(id string, s jobs.Status, d int, created time.Time) {
		t.Helper()
		pr := &jobs.PipelineRun{PipelineRunID: id, Pipeline: "p", Version: 1, Status: s, CreatedAt: created, Spec: *p,
			Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusPending}}}
		if d > 0 {
			pr.ScheduledTime = day(d)
		}
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	add("pr-00-old", jobs.StatusFailed, 0, t0.Add(-time.Hour)) // unused: manual
	add("pr-01-old", jobs.StatusFailed, 1, t0.Add(-time.Hour)) // a deleted pipeline's day 1
	if _, _, err := db.PutPipeline(ctx, p, t0); err != nil {
		t.Fatal(err)
	}
	add("pr-02", jobs.StatusPending, 2, t0.Add(time.Minute))   // day 1 was the deleted pipeline's: none
	add("pr-03", jobs.StatusFailed, 3, t0.Add(time.Minute))    // ended
	add("pr-03-m", jobs.StatusSucceeded, 0, t0.Add(time.Hour)) // manual, between: passed over
	add("pr-04", jobs.StatusPending, 4, t0.Add(time.Minute))   // after day 3 (FAILED)
	add("pr-05", jobs.StatusPending, 5, t0.Add(time.Minute))   // after day 4, PENDING
	add("pr-05-m", jobs.StatusPending, 0, t0.Add(time.Hour))   // manual: no previous looked for
	add("pr-06", jobs.StatusSucceeded, 6, t0.Add(time.Minute))
	add("pr-07", jobs.StatusPending, 7, t0.Add(time.Minute))

	var seen PipelineRunQueue
	if _, err := db.PromotePipelineRuns(ctx, "p", func(q *PipelineRunQueue) []*jobs.PipelineRun {
		seen = *q
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	byID := map[string]*jobs.PipelineRun{}
	for _, pr := range seen.Pending {
		byID[pr.PipelineRunID] = pr
	}
	want := map[string]struct {
		id     string
		status jobs.Status
		day    int
	}{
		"pr-04": {"pr-03", jobs.StatusFailed, 3},
		"pr-05": {"pr-04", jobs.StatusPending, 4},
		"pr-07": {"pr-06", jobs.StatusSucceeded, 6},
	}
	if len(seen.Previous) != len(want) {
		t.Errorf("previous runs %v, want those of %v", seen.Previous, want)
	}
	for id, w := range want {
		prev := seen.Previous[id]
		if prev == nil || prev.PipelineRunID != w.id || prev.Status != w.status || prev.ScheduledTime == nil || !prev.ScheduledTime.Equal(*day(w.day)) {
			t.Errorf("%s: previous %+v, want %s %s of day %d", id, prev, w.id, w.status, w.day)
		}
	}
	if seen.Previous["pr-05"] != byID["pr-04"] {
		t.Error("a previous run PENDING too is not the element of Pending")
	}

	// Without dependsOnPast nothing is looked up.
	off := testPipeline(t, "name: p\nstages: [{name: a, taskDefinition: t}]\n")
	if _, _, err := db.PutPipeline(ctx, off, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PromotePipelineRuns(ctx, "p", func(q *PipelineRunQueue) []*jobs.PipelineRun {
		seen = *q
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen.Previous != nil {
		t.Errorf("previous runs without dependsOnPast: %v", seen.Previous)
	}
}
