package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
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

// TestUnpublishedDueQueryPlan: the retry timer's read at each backoff's
// end read the row of every unpublished run (runs_unpublished, by run
// id), the retries waiting included, to compare its queued_at: a quarter
// of a second with 10,000 retries waiting, at each of their backoffs'
// ends. The runs due are a range of runs_unpublished_due, and the next
// one due a seek in it, neither reading the rows of those that wait.
func TestUnpublishedDueQueryPlan(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	plan := func(q string) string {
		t.Helper()
		rows, err := db.r.Query(`EXPLAIN QUERY PLAN `+q, int64(0))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			b.WriteString(detail + "\n")
		}
		return b.String()
	}
	if p := plan(unpublishedDueQuery); !strings.Contains(p, "SEARCH runs USING INDEX runs_unpublished_due (queued_at<?)") {
		t.Errorf("the runs due are not a range of runs_unpublished_due:\n%s", p)
	}
	if p := plan(nextUnpublishedDueQuery); !strings.Contains(p, "SEARCH runs USING INDEX runs_unpublished_due (queued_at>?)") ||
		strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("the next run due is not a seek in runs_unpublished_due:\n%s", p)
	}
}

// BenchmarkUnpublishedDue is the retry timer's read at a backoff's end
// with 10,000 retries waiting, their documents 8 KB: before
// runs_unpublished_due, 250 ms each.
func BenchmarkUnpublishedDue(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "gantry.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for i := range 10000 {
		at := now.Add(time.Duration(i+1) * time.Second)
		r := &jobs.Run{RunID: fmt.Sprintf("r%06d", i), Status: jobs.StatusQueued, Cluster: "default", CreatedAt: now,
			StatusReason: strings.Repeat("x", 8000),
			Attempts:     []jobs.Attempt{{Attempt: 1, Status: jobs.StatusFailed}, {Attempt: 2, Status: jobs.StatusQueued, CreatedAt: now, NotBefore: &at}}}
		if _, _, err := db.CreateRun(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, _, err := db.UnpublishedDue(ctx, now); err != nil {
			b.Fatal(err)
		}
	}
}
