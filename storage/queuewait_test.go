package storage

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// waitsOf formats QueueWaits as cluster/priority@seconds after t0.
func waitsOf(ws []QueueWait) []string {
	var out []string
	for _, w := range ws {
		out = append(out, fmt.Sprintf("%s/%s@%gs", w.Cluster, w.Priority, w.Since.Sub(t0).Seconds()))
	}
	return out
}

// TestOldestQueued: the oldest QUEUED run of each cluster and priority,
// by when its current attempt was queued; runs taken by a worker or ended
// are not waiting, a retry waits from the end of its backoff, and a run
// stored without a priority is normal.
func TestOldestQueued(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	if ws, err := db.OldestQueued(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("OldestQueued of no runs = %v, %v", waitsOf(ws), err)
	}
	in := func(cluster string, p jobs.Priority) func(*jobs.Run) {
		return func(r *jobs.Run) { r.Cluster, r.Priority = cluster, p }
	}
	ended := func(st jobs.Status) func(*jobs.Run) {
		return func(r *jobs.Run) { r.Status, r.Attempts[0].Status = st, st }
	}
	backoffEnd := t0.Add(100 * time.Second)
	for _, r := range []*jobs.Run{
		newRun(0, in("default", "")), // stored before priorities: normal
		newRun(1, in("default", jobs.PriorityNormal)),
		newRun(2, in("default", jobs.PriorityNormal)),
		newRun(3, in("default", jobs.PriorityLow)),
		newRun(4, in("etl", jobs.PriorityHigh), ended(jobs.StatusRunning)),
		newRun(5, in("etl", jobs.PriorityHigh)),
		newRun(6, in("default", jobs.PriorityLow), ended(jobs.StatusSucceeded)),
		newRun(7, in("etl", jobs.PriorityHigh), ended(jobs.StatusStarting)),
		newRun(8, in("gpu", jobs.PriorityLow), func(r *jobs.Run) {
			r.Attempts[0].Status = jobs.StatusFailed
			r.Attempts = append(r.Attempts, jobs.Attempt{Attempt: 2, Status: jobs.StatusQueued, CreatedAt: t0.Add(9 * time.Second), NotBefore: &backoffEnd})
		}),
	} {
		mustCreate(t, db, r)
	}
	want := []string{"default/normal@0s", "default/low@3s", "etl/high@5s", "gpu/low@100s"}
	if ws, err := db.OldestQueued(ctx); err != nil || !slices.Equal(waitsOf(ws), want) {
		t.Fatalf("OldestQueued = %v, %v; want %v", waitsOf(ws), err, want)
	}
	// The oldest taken, the next one is the oldest; the last low of a
	// cluster taken, its cluster has none.
	for _, id := range []string{newRun(0).RunID, newRun(8).RunID} {
		if _, err := db.UpdateRun(ctx, id, func(r *jobs.Run) bool {
			r.Status, r.Current().Status = jobs.StatusStarting, jobs.StatusStarting
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	want = []string{"default/normal@1s", "default/low@3s", "etl/high@5s"}
	if ws, err := db.OldestQueued(ctx); err != nil || !slices.Equal(waitsOf(ws), want) {
		t.Fatalf("OldestQueued after two runs were taken = %v, %v; want %v", waitsOf(ws), err, want)
	}
	// A run that goes back to the queue (its worker lost) waits from then.
	if _, err := db.UpdateRun(ctx, newRun(0).RunID, func(r *jobs.Run) bool {
		r.Current().Status = jobs.StatusFailed
		r.Status = jobs.StatusQueued
		r.Attempts = append(r.Attempts, jobs.Attempt{Attempt: 2, Status: jobs.StatusQueued, CreatedAt: t0.Add(50 * time.Second), Redelivery: true})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if ws, err := db.OldestQueued(ctx); err != nil || !slices.Equal(waitsOf(ws), want) {
		t.Fatalf("OldestQueued after a run went back to the queue = %v, %v; want %v", waitsOf(ws), err, want)
	}
}

// TestMigration11FillsQueueWaitColumns: runs stored before migration 0011
// get their priority and queued_at columns from their documents.
func TestMigration11FillsQueueWaitColumns(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	backoffEnd := t0.Add(100*time.Second + 250*time.Millisecond)
	for _, r := range []*jobs.Run{
		newRun(1, func(r *jobs.Run) { r.Priority = "" }),
		newRun(2, func(r *jobs.Run) { r.Priority = jobs.PriorityLow }),
		newRun(3, func(r *jobs.Run) {
			r.Priority, r.Attempts[0].Status = jobs.PriorityHigh, jobs.StatusFailed
			r.Attempts = append(r.Attempts, jobs.Attempt{Attempt: 2, Status: jobs.StatusQueued, CreatedAt: t0.Add(9 * time.Second), NotBefore: &backoffEnd})
		}),
	} {
		mustCreate(t, db, r)
	}
	// A document without a priority, as runs stored before priorities.
	if _, err := db.w.ExecContext(ctx, `UPDATE runs SET doc = json_remove(CAST(doc AS TEXT), '$.priority') WHERE run_id = ?`, newRun(1).RunID); err != nil {
		t.Fatal(err)
	}
	// Undo migration 0011 (and 0020, whose index is on queued_at), then
	// apply them again over the stored runs.
	for _, stmt := range []string{
		`DROP INDEX runs_unpublished_due`, `DELETE FROM schema_migrations WHERE version = 20`,
		`DROP INDEX runs_queue_wait`, `ALTER TABLE runs DROP COLUMN priority`, `ALTER TABLE runs DROP COLUMN queued_at`,
		`DELETE FROM schema_migrations WHERE version = 11`,
	} {
		if _, err := db.w.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := migrate(ctx, db.w); err != nil {
		t.Fatal(err)
	}
	want := []string{"default/high@100.25s", "default/normal@1s", "default/low@2s"}
	if ws, err := db.OldestQueued(ctx); err != nil || !slices.Equal(waitsOf(ws), want) {
		t.Fatalf("OldestQueued after the migration = %v, %v; want %v", waitsOf(ws), err, want)
	}
}

// TestOldestQueuedLeavesWaitingRuns: a run that waits for its
// dependencies (dependsOn) is QUEUED with its job not in the queue: no
// worker could take it, so it is not the queue's oldest, however long it
// waits. Released, it waits in the queue from its release, not from its
// submission.
func TestOldestQueuedLeavesWaitingRuns(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	dep := newRun(0, func(r *jobs.Run) { r.Status, r.Attempts[0].Status = jobs.StatusRunning, jobs.StatusRunning })
	waiting := newRun(1, func(r *jobs.Run) {
		r.DependsOn = []jobs.DependencyState{{RunID: dep.RunID, Condition: jobs.CondSuccess}}
	})
	for _, r := range []*jobs.Run{dep, waiting, newRun(2)} {
		mustCreate(t, db, r)
	}
	want := []string{"default/normal@2s"}
	if ws, err := db.OldestQueued(ctx); err != nil || !slices.Equal(waitsOf(ws), want) {
		t.Fatalf("OldestQueued with a run waiting for another = %v, %v; want %v", waitsOf(ws), err, want)
	}
	released := t0.Add(200 * time.Second)
	if _, err := db.UpdateRun(ctx, waiting.RunID, func(r *jobs.Run) bool {
		_, ok := r.ResolveDependencies(released, func(string) (jobs.Status, bool) { return jobs.StatusSucceeded, true })
		return ok
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateRun(ctx, newRun(2).RunID, func(r *jobs.Run) bool {
		r.Status, r.Current().Status = jobs.StatusStarting, jobs.StatusStarting
		return true
	}); err != nil {
		t.Fatal(err)
	}
	want = []string{"default/normal@200s"}
	if ws, err := db.OldestQueued(ctx); err != nil || !slices.Equal(waitsOf(ws), want) {
		t.Fatalf("OldestQueued with the run released at 200s = %v, %v; want %v", waitsOf(ws), err, want)
	}
}
