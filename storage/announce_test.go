package storage

import (
	"context"
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
