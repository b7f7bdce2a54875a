package storage

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// TestUnpublishedDue: of the unpublished runs, those due by now (a first
// attempt, a retry whose backoff ended), by id, and when the earliest
// retry still waiting is due; published runs count for neither.
func TestUnpublishedDue(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	add := func(id string, backoff time.Duration) {
		t.Helper()
		r := &jobs.Run{RunID: id, Status: jobs.StatusQueued, Cluster: "default", CreatedAt: now.Add(-time.Hour),
			Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: now.Add(-time.Hour)}}}
		if backoff != 0 {
			at := now.Add(backoff)
			r.Attempts[0].Status = jobs.StatusFailed
			r.Attempts = append(r.Attempts, jobs.Attempt{Attempt: 2, Status: jobs.StatusQueued, CreatedAt: now.Add(-time.Minute), NotBefore: &at})
		}
		if _, _, err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	add("a-new", 0)
	add("b-ended", -time.Second)
	add("c-later", time.Minute)
	add("d-soon", 2*time.Second)
	add("e-now", 0)
	if err := db.MarkPublished(ctx, "e-now", 1); err != nil {
		t.Fatal(err)
	}
	runs, next, err := db.UnpublishedDue(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.RunID)
	}
	if !slices.Equal(ids, []string{"a-new", "b-ended"}) || !next.Equal(now.Add(2*time.Second)) {
		t.Errorf("due %v, next %s; want [a-new b-ended], next %s", ids, next, now.Add(2*time.Second))
	}
	if _, next, err := db.UnpublishedDue(ctx, now.Add(time.Hour)); err != nil || !next.IsZero() {
		t.Errorf("an hour on: next %s, %v; want none", next, err)
	}
}
