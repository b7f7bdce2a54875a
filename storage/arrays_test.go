package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// newArray is an array run of n children as the server makes it, with
// idempotency key key.
func newArray(i, n int, key string) (*jobs.Run, []*jobs.Run) {
	parent := newRun(i, func(r *jobs.Run) {
		r.Attempts = []jobs.Attempt{}
		r.IdempotencyKey = key
		r.ArrayProperties = &jobs.ArrayProperties{Size: n, StatusSummary: map[jobs.Status]int{jobs.StatusQueued: n}}
	})
	var children []*jobs.Run
	for c := range n {
		children = append(children, newRun(i, func(r *jobs.Run) {
			r.RunID = jobs.ArrayChildID(parent.RunID, c)
			r.ArrayJobID = parent.RunID
			idx := c
			r.ArrayProperties = &jobs.ArrayProperties{Index: &idx}
		}))
	}
	return parent, children
}

// TestArrayRunStoredAndRecomputed: an array run's parent and children are
// stored together, the parent never among the unpublished runs (it has no
// job, even once a new jobs stream is adopted), its children listed apart;
// its status follows its children's as stored, however long after they
// changed (a restart), and a key finds the parent again.
func TestArrayRunStoredAndRecomputed(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	other := newRun(1)
	mustCreate(t, db, other)
	parent, children := newArray(2, 3, "k")
	stored, created, outboxes, err := db.CreateArrayRun(ctx, parent, children)
	if err != nil || !created || stored.RunID != parent.RunID || len(outboxes) != 4 || slices.Contains(outboxes, 0) {
		t.Fatalf("CreateArrayRun: %v, created %v, outbox rows %v", err, created, outboxes)
	}
	again, _ := newArray(3, 3, "k")
	if found, created, _, err := db.CreateArrayRun(ctx, again, nil); err != nil || created || found.RunID != parent.RunID {
		t.Fatalf("the same key again: %v, created %v, %v", found, created, err)
	}

	unpublished := func() []string {
		t.Helper()
		runs, err := db.Unpublished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.RunID)
		}
		return ids
	}
	want := []string{other.RunID, children[0].RunID, children[1].RunID, children[2].RunID}
	if got := unpublished(); !slices.Equal(got, want) {
		t.Errorf("unpublished %v; want the children and the other run, not the parent", got)
	}
	for _, r := range append([]*jobs.Run{other}, children...) {
		if err := db.MarkPublished(ctx, r.RunID, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.AdoptJobsStream(ctx, "stream-2", true); err != nil {
		t.Fatal(err)
	}
	if got := unpublished(); !slices.Equal(got, want) {
		t.Errorf("unpublished after a new jobs stream %v; want the children and the other run, not the parent", got)
	}

	list := func(f RunFilter) []string {
		t.Helper()
		runs, err := db.ListRuns(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.RunID)
		}
		return ids
	}
	if got := list(RunFilter{HideArrayChildren: true}); !slices.Equal(got, []string{parent.RunID, other.RunID}) {
		t.Errorf("listed without children: %v", got)
	}
	if got := list(RunFilter{ArrayJobID: parent.RunID}); len(got) != 3 || slices.Contains(got, parent.RunID) {
		t.Errorf("listed the array's children: %v", got)
	}
	if ids, err := db.ActiveArrayRuns(ctx); err != nil || !slices.Equal(ids, []string{parent.RunID}) {
		t.Errorf("active array runs: %v, %v", ids, err)
	}

	end := func(i int, st jobs.Status, code int) {
		t.Helper()
		if _, err := db.UpdateRun(ctx, children[i].RunID, func(r *jobs.Run) bool {
			r.Status = st
			r.ExitCode = &code
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	recompute := func(wantStatus jobs.Status, wantChanged bool) *jobs.Run {
		t.Helper()
		r, _, changed, outbox, err := db.RecomputeArray(ctx, parent.RunID, t0)
		if err != nil || r.Status != wantStatus || changed != wantChanged {
			t.Fatalf("recompute: %v, status %s changed %v; want %s, %v", err, r.Status, changed, wantStatus, wantChanged)
		}
		if moved := changed && r.Status != jobs.StatusQueued; moved != (outbox != 0) {
			t.Errorf("outbox row %d for a change of status %v", outbox, moved)
		}
		return r
	}
	recompute(jobs.StatusQueued, false)
	end(0, jobs.StatusSucceeded, 0)
	recompute(jobs.StatusRunning, true)
	recompute(jobs.StatusRunning, false)
	// Both end while no server recomputes (a crash): the next does.
	end(2, jobs.StatusFailed, 4)
	end(1, jobs.StatusFailed, 3)
	r := recompute(jobs.StatusFailed, true)
	if r.ExitCode == nil || *r.ExitCode != 3 || r.StoppedReason != "2 of 3 child runs did not succeed, "+children[1].RunID+" FAILED (exit 3) first" ||
		r.ArrayProperties.StatusSummary[jobs.StatusFailed] != 2 {
		t.Errorf("the ended parent: exit %v, reason %q, summary %v", r.ExitCode, r.StoppedReason, r.ArrayProperties.StatusSummary)
	}
	if ids, err := db.ActiveArrayRuns(ctx); err != nil || len(ids) != 0 {
		t.Errorf("active array runs once it ended: %v, %v", ids, err)
	}
	// A plain run is no array's: left as it is.
	if r, _, changed, _, err := db.RecomputeArray(ctx, other.RunID, t0); err != nil || changed || r.Status != jobs.StatusQueued {
		t.Errorf("recompute of a plain run: %v, changed %v", err, changed)
	}
}

// TestArrayRunPruned: --run-retention never deletes an array's child
// while its parent is there: a long array whose first children ended past
// the retention still ends when its last children do (the parent counts
// every child), and its children go with the parent, once it is due, in
// one transaction, so that neither is left without the other.
func TestArrayRunPruned(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	parent, children := newArray(2, 3, "")
	if _, _, _, err := db.CreateArrayRun(ctx, parent, children); err != nil {
		t.Fatal(err)
	}
	end := func(i int, at time.Time) {
		t.Helper()
		if _, err := db.UpdateRun(ctx, children[i].RunID, func(r *jobs.Run) bool {
			r.Status, r.FinishedAt = jobs.StatusSucceeded, &at
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour
	end(0, t0.Add(day))
	if _, _, _, _, err := db.RecomputeArray(ctx, parent.RunID, t0.Add(day)); err != nil {
		t.Fatal(err)
	}
	// Child 0 ended 30 days before the others; the retention is 7 days.
	if n, err := db.PruneHistory(ctx, Prune{EndedBefore: t0.Add(24 * day)}); err != nil || n.Runs != 0 {
		t.Errorf("prune while the array runs: %+v, %v; want nothing deleted", n, err)
	}
	end(1, t0.Add(31*day))
	end(2, t0.Add(31*day))
	r, _, _, _, err := db.RecomputeArray(ctx, parent.RunID, t0.Add(31*day))
	if err != nil || r.Status != jobs.StatusSucceeded || r.ArrayProperties.StatusSummary[jobs.StatusSucceeded] != 3 {
		t.Fatalf("the parent once its children ended: %v, %v", r, err)
	}
	// Due: the parent goes with its children, even past a batch.
	n, err := db.PruneHistory(ctx, Prune{EndedBefore: t0.Add(40 * day), Batch: 2})
	if err != nil || n.Runs != 4 {
		t.Errorf("prune of the ended array: %+v, %v; want 4 runs deleted", n, err)
	}
	for _, id := range []string{parent.RunID, children[0].RunID, children[2].RunID} {
		if _, err := db.GetRun(ctx, id); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("run %s after the prune: %v; want it gone", id, err)
		}
	}
}

// TestArrayCountsFollowChildren: array_counts, which the triggers keep,
// says what counting the children says after every kind of write of a
// child (its insert, a status change, a write that keeps its status, its
// delete), and a plain run's writes leave it alone.
func TestArrayCountsFollowChildren(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	parent, children := newArray(2, 5, "")
	if _, _, _, err := db.CreateArrayRun(ctx, parent, children); err != nil {
		t.Fatal(err)
	}
	plain := newRun(3)
	mustCreate(t, db, plain)
	check := func(when string) {
		t.Helper()
		lo, hi := jobs.ArrayChildRange(parent.RunID)
		rows, err := db.r.QueryContext(ctx, `SELECT status, COUNT(*) FROM runs WHERE run_id >= ? AND run_id < ? GROUP BY status`, lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		want := map[jobs.Status]int{}
		for rows.Next() {
			var st string
			var n int
			if err := rows.Scan(&st, &n); err != nil {
				t.Fatal(err)
			}
			want[jobs.Status(st)] = n
		}
		rows.Close()
		tx, err := db.r.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		got, err := childCounts(ctx, tx, parent.RunID)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: array_counts %v, %v; the children counted %v", when, got, err, want)
		}
		var others int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM array_counts WHERE parent <> ?`, parent.RunID).Scan(&others); err != nil || others != 0 {
			t.Errorf("%s: %d rows of array_counts for other runs, %v", when, others, err)
		}
	}
	check("stored")
	set := func(id string, st jobs.Status) {
		t.Helper()
		if _, err := db.UpdateRun(ctx, id, func(r *jobs.Run) bool { r.Status = st; return true }); err != nil {
			t.Fatal(err)
		}
	}
	for i, st := range []jobs.Status{jobs.StatusStarting, jobs.StatusRunning, jobs.StatusRunning, jobs.StatusSucceeded, jobs.StatusQueued,
		jobs.StatusFailed, jobs.StatusCanceled, jobs.StatusSucceeded} {
		set(children[i%5].RunID, st)
		set(plain.RunID, st)
		check(fmt.Sprintf("child %d %s", i%5, st))
	}
	if _, err := db.w.ExecContext(ctx, `DELETE FROM runs WHERE run_id = ?`, children[4].RunID); err != nil {
		t.Fatal(err)
	}
	check("a child deleted")
}

// TestArrayChildrenByIndex: an array's children are listed by index,
// PARENT-10 after PARENT-9 (by id text it came before PARENT-2), a page
// at a time with RunFilter.Next, with or without a status or a tag, and
// none of another array's or a plain run.
func TestArrayChildrenByIndex(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	mustCreate(t, db, newRun(1))
	parent, children := newArray(2, 12, "")
	for _, c := range children {
		c.Tags = map[string]string{"team": "data"}
	}
	other, others := newArray(3, 3, "")
	for _, a := range []struct {
		parent   *jobs.Run
		children []*jobs.Run
	}{{parent, children}, {other, others}} {
		if _, _, _, err := db.CreateArrayRun(ctx, a.parent, a.children); err != nil {
			t.Fatal(err)
		}
	}
	// Children 3, 7 and 11 fail.
	for _, i := range []int{3, 7, 11} {
		if _, err := db.UpdateRun(ctx, children[i].RunID, func(r *jobs.Run) bool { r.Status = jobs.StatusFailed; return true }); err != nil {
			t.Fatal(err)
		}
	}
	pages := func(f RunFilter) [][]int {
		t.Helper()
		var out [][]int
		for range 20 {
			runs, err := db.ListRuns(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var page []int
			for _, r := range runs {
				i, ok := jobs.ArrayChildIndex(parent.RunID, r.RunID)
				if !ok {
					t.Fatalf("%+v listed %s, no child of %s", f, r.RunID, parent.RunID)
				}
				page = append(page, i)
			}
			out = append(out, page)
			if len(runs) < f.Limit || f.Limit == 0 {
				return out
			}
			f.Next(&runs[len(runs)-1])
		}
		t.Fatalf("%+v: more than 20 pages", f)
		return nil
	}
	for _, c := range []struct {
		f    RunFilter
		want string
	}{
		{RunFilter{ArrayJobID: parent.RunID}, "[[0 1 2 3 4 5 6 7 8 9 10 11]]"},
		{RunFilter{ArrayJobID: parent.RunID, Limit: 5}, "[[0 1 2 3 4] [5 6 7 8 9] [10 11]]"},
		{RunFilter{ArrayJobID: parent.RunID, Limit: 4}, "[[0 1 2 3] [4 5 6 7] [8 9 10 11] []]"},
		{RunFilter{ArrayJobID: parent.RunID, Limit: 5, FromIndex: 9}, "[[9 10 11]]"},
		{RunFilter{ArrayJobID: parent.RunID, Limit: 2, Statuses: []jobs.Status{jobs.StatusFailed}}, "[[3 7] [11]]"},
		{RunFilter{ArrayJobID: parent.RunID, Limit: 5, Statuses: []jobs.Status{jobs.StatusQueued}}, "[[0 1 2 4 5] [6 8 9 10]]"},
		{RunFilter{ArrayJobID: parent.RunID, Limit: 5, Tags: map[string]string{"team": "data"}}, "[[0 1 2 3 4] [5 6 7 8 9] [10 11]]"},
		{RunFilter{ArrayJobID: parent.RunID, Limit: 5, Before: parent.RunID + "."}, "[[0 1 2 3 4] [5 6 7 8 9] [10 11]]"},
		{RunFilter{ArrayJobID: parent.RunID, Limit: 5, Before: parent.RunID}, "[[]]"},
	} {
		if got := fmt.Sprint(pages(c.f)); got != c.want {
			t.Errorf("%+v: pages %s; want %s", c.f, got, c.want)
		}
	}
}

// TestArrayChildrenQueryPlan: a page of an array's children is a range of
// runs_array_children in index order, whatever the filters, without
// sorting the array's children (10,000 of them) for each page.
func TestArrayChildrenQueryPlan(t *testing.T) {
	db, _ := openDB(t)
	for _, f := range []RunFilter{
		{ArrayJobID: "01p", Limit: 100},
		{ArrayJobID: "01p", Limit: 100, FromIndex: 100, Before: "01z"},
		{ArrayJobID: "01p", Limit: 100, Statuses: []jobs.Status{jobs.StatusFailed}},
		{ArrayJobID: "01p", Limit: 100, Tags: map[string]string{"team": "data"}, TagKeys: []string{"env"}},
	} {
		q, args := f.query()
		rows, err := db.r.Query(`EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(detail + "\n")
		}
		rows.Close()
		if p := plan.String(); !strings.Contains(p, "SEARCH r USING INDEX runs_array_children (<expr>=? AND <expr>>?)") ||
			strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%+v:\n%s", f, p)
		}
	}
}
