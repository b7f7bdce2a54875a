package storage

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// The announcement outbox: a row only for a change that asks for one, in
// its transaction; each row deleted by its own id, so that clearing the
// row of a change whose announcement is stored leaves the row of a later
// change of the same run; deleting rows already gone changes nothing.
func TestAnnouncementOutbox(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	r := newRun(1)
	if _, created, outbox, err := db.CreateRunAnnounced(ctx, r, false); err != nil || !created || outbox != 0 {
		t.Fatalf("create without announce: created %v, outbox %d, %v", created, outbox, err)
	}
	if _, _, outbox, err := db.CreateRunAnnounced(ctx, newRun(2), true); err != nil || outbox == 0 {
		t.Fatalf("create with announce: outbox %d, %v", outbox, err)
	}
	// Not written: no row, whatever fn says of announcing.
	if _, outbox, err := db.UpdateRunAnnounced(ctx, r.RunID, func(*jobs.Run) (bool, bool) { return false, true }); err != nil || outbox != 0 {
		t.Fatalf("update not written: outbox %d, %v", outbox, err)
	}
	reason := func(s string) func(*jobs.Run) (bool, bool) {
		return func(r *jobs.Run) (bool, bool) { r.StatusReason = s; return true, true }
	}
	_, first, err := db.UpdateRunAnnounced(ctx, r.RunID, reason("one"))
	if err != nil || first == 0 {
		t.Fatalf("first update: outbox %d, %v", first, err)
	}
	_, second, err := db.UpdateRunAnnounced(ctx, r.RunID, reason("two"))
	if err != nil || second == 0 || second == first {
		t.Fatalf("second update: outbox %d (first %d), %v", second, first, err)
	}
	pending, err := db.PendingAnnouncements(ctx)
	if err != nil || len(pending) != 3 {
		t.Fatalf("pending: %v, %v; want 3 rows", pending, err)
	}
	if err := db.AnnouncementsDone(ctx, []int64{first, first}); err != nil {
		t.Fatal(err)
	}
	pending, err = db.PendingAnnouncements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(pending, func(a Announcement) bool { return a.ID == first }) ||
		!slices.Contains(pending, Announcement{ID: second, RunID: r.RunID}) || len(pending) != 2 {
		t.Fatalf("after clearing row %d: %v; want the second change's row and the new run's", first, pending)
	}
	all := make([]int64, 0, announcedBatch+len(pending))
	for _, a := range pending {
		all = append(all, a.ID)
	}
	for i := range announcedBatch { // more ids than one statement takes, most gone
		all = append(all, int64(1000+i))
	}
	if err := db.AnnouncementsDone(ctx, all); err != nil {
		t.Fatal(err)
	}
	if pending, err := db.PendingAnnouncements(ctx); err != nil || len(pending) != 0 {
		t.Fatalf("after clearing all: %v, %v", pending, err)
	}
}

// UpdateRunsAnnounced: the runs fn writes are written, with a row each
// where fn asks, in one transaction: a run missing fails them all and
// leaves every run and the outbox as they were.
func TestUpdateRunsAnnounced(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	a, b, c := newRun(1), newRun(2), newRun(3)
	for _, r := range []*jobs.Run{a, b, c} {
		if _, _, _, err := db.CreateRunAnnounced(ctx, r, false); err != nil {
			t.Fatal(err)
		}
	}
	// a written and announced, b written alone, c not written.
	fn := func(r *jobs.Run) (bool, bool) {
		r.StatusReason = "batch"
		return r.RunID != c.RunID, r.RunID == a.RunID
	}
	if _, _, err := db.UpdateRunsAnnounced(ctx, []string{a.RunID, "nosuch", b.RunID}, fn); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("with a run missing: %v; want ErrNotFound", err)
	}
	if got, err := db.GetRun(ctx, a.RunID); err != nil || got.StatusReason != "" {
		t.Fatalf("run %s after the failed batch: reason %q, %v; want it unchanged", a.RunID, got.StatusReason, err)
	}
	if pending, err := db.PendingAnnouncements(ctx); err != nil || len(pending) != 0 {
		t.Fatalf("outbox after the failed batch: %v, %v; want empty", pending, err)
	}
	runs, outboxes, err := db.UpdateRunsAnnounced(ctx, []string{a.RunID, b.RunID, c.RunID}, fn)
	if err != nil {
		t.Fatal(err)
	}
	if outboxes[0] == 0 || outboxes[1] != 0 || outboxes[2] != 0 {
		t.Errorf("outbox rows %v; want one for %s alone", outboxes, a.RunID)
	}
	for i, want := range []string{"batch", "batch", ""} {
		got, err := db.GetRun(ctx, runs[i].RunID)
		if err != nil || got.StatusReason != want || runs[i].StatusReason != want {
			t.Errorf("run %s: stored reason %q, returned %q, %v; want %q", runs[i].RunID, got.StatusReason, runs[i].StatusReason, err, want)
		}
	}
	if pending, err := db.PendingAnnouncements(ctx); err != nil || !slices.Equal(pending, []Announcement{{ID: outboxes[0], RunID: a.RunID}}) {
		t.Errorf("outbox: %v, %v; want %s's row", pending, err, a.RunID)
	}
}
