package storage

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// inPool puts a run in pool, with priority p (normal when empty).
func inPool(pool string, p jobs.Priority) func(*jobs.Run) {
	return func(r *jobs.Run) {
		r.Pool = pool
		if p != "" {
			r.Priority = p
		}
	}
}

func poolRunIDs(runs []*jobs.Run) []string {
	out := []string{}
	for _, r := range runs {
		out = append(out, r.RunID)
	}
	return out
}

func mustPool(t *testing.T, db *DB, name string, slots, inUse, waiting int) {
	t.Helper()
	p, err := db.GetPool(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if p.Slots != slots || p.InUse != inUse || p.Waiting != waiting {
		t.Errorf("pool %s: slots %d, in use %d, waiting %d; want %d, %d, %d", name, p.Slots, p.InUse, p.Waiting, slots, inUse, waiting)
	}
}

// TestPoolReleaseOrderAndCount: a pool's waiting runs take its free slots
// highest priority first, then oldest first, as many as are free and
// never more, however often the release runs; a run that ends frees its
// slot (ApplyEvents), a stop of a waiting run leaves the waiting; more
// slots release more at once; the runs waiting stay out of Unpublished
// and of OldestQueued, those released come in.
func TestPoolReleaseOrderAndCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	if _, created, err := db.SetPool(ctx, "warehouse", 2, t0); err != nil || !created {
		t.Fatalf("SetPool: created=%v err=%v", created, err)
	}
	low := newRun(1, inPool("warehouse", jobs.PriorityLow))
	n2 := newRun(2, inPool("warehouse", ""))
	n3 := newRun(3, inPool("warehouse", ""))
	high := newRun(4, inPool("warehouse", jobs.PriorityHigh))
	plain := newRun(5)
	for _, r := range []*jobs.Run{low, n2, n3, high, plain} {
		mustCreate(t, db, r)
	}
	mustPool(t, db, "warehouse", 2, 0, 4)
	un, err := db.Unpublished(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(un); !slices.Equal(got, []string{plain.RunID}) {
		t.Errorf("unpublished before any release: %v, want only the run without a pool", got)
	}
	if ws, err := db.OldestQueued(ctx); err != nil || len(ws) != 1 || !ws[0].Since.Equal(plain.CreatedAt) {
		t.Errorf("oldest queued: %+v, %v; want the run without a pool's alone", ws, err)
	}

	now := t0.Add(time.Hour)
	rel, err := db.ReleasePool(ctx, "warehouse", now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := poolRunIDs(rel.Released); !slices.Equal(got, []string{high.RunID, n2.RunID}) {
		t.Errorf("released %v, want high first, then the oldest normal %v", got, []string{high.RunID, n2.RunID})
	}
	wantReason := "waiting for a slot in pool warehouse (2 of 2 in use)"
	if got := poolRunIDs(rel.Told); !slices.Equal(got, []string{n3.RunID, low.RunID}) {
		t.Errorf("told %v, want the two left waiting", got)
	}
	for _, id := range []string{n3.RunID, low.RunID} {
		if r := mustGet(t, db, id); r.StatusReason != wantReason || r.PoolSlotAt != nil {
			t.Errorf("run %s: reason %q slot %v, want %q and none", id, r.StatusReason, r.PoolSlotAt, wantReason)
		}
	}
	if r := mustGet(t, db, high.RunID); r.PoolSlotAt == nil || !r.PoolSlotAt.Equal(now) || r.StatusReason != "" {
		t.Errorf("released run: slot at %v reason %q", r.PoolSlotAt, r.StatusReason)
	}
	mustPool(t, db, "warehouse", 2, 2, 2)
	un, _ = db.Unpublished(ctx)
	if got := ids(un); !slices.Equal(got, []string{n2.RunID, high.RunID, plain.RunID}) {
		t.Errorf("unpublished after the release: %v", got)
	}
	// Counted from the release, not the submission.
	if ws, err := db.OldestQueued(ctx); err != nil || len(ws) != 2 || ws[0].Priority != jobs.PriorityHigh || !ws[0].Since.Equal(now) {
		t.Errorf("oldest queued after the release: %+v, %v", ws, err)
	}

	// Again: nothing is free, nothing more goes, no reason changes.
	for range 3 {
		rel, err = db.ReleasePool(ctx, "warehouse", now, nil)
		if err != nil || len(rel.Released) != 0 || len(rel.Told) != 0 {
			t.Fatalf("release with no slot free: %+v, %v", rel, err)
		}
	}

	// A retry keeps its slot; the end frees it.
	if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(high, 1, 1, jobs.StatusRunning), ev(high, 1, 2, jobs.StatusFailed)}); err != nil {
		t.Fatal(err)
	}
	mustPool(t, db, "warehouse", 2, 1, 2)
	rel, err = db.ReleasePool(ctx, "warehouse", now, nil)
	if err != nil || !slices.Equal(poolRunIDs(rel.Released), []string{n3.RunID}) {
		t.Fatalf("release after an end: %v, %v; want %s", poolRunIDs(rel.Released), err, n3.RunID)
	}
	// A stop of the waiting run takes it out of the pool.
	if _, err := db.UpdateRun(ctx, low.RunID, func(r *jobs.Run) bool { return r.Cancel(now, "stopped") }); err != nil {
		t.Fatal(err)
	}
	mustPool(t, db, "warehouse", 2, 2, 0)

	// Slots lowered: the reasons say so, nothing is released until the
	// runs in use are below them.
	if _, _, err := db.SetPool(ctx, "warehouse", 1, now); err != nil {
		t.Fatal(err)
	}
	w := newRun(6, inPool("warehouse", jobs.PriorityHigh))
	mustCreate(t, db, w)
	rel, err = db.ReleasePool(ctx, "warehouse", now, nil)
	if err != nil || len(rel.Released) != 0 {
		t.Fatalf("release over the slots: %v, %v", poolRunIDs(rel.Released), err)
	}
	if r := mustGet(t, db, w.RunID); r.StatusReason != "waiting for a slot in pool warehouse (2 of 1 in use)" {
		t.Errorf("reason %q", r.StatusReason)
	}
	// Paused.
	if _, _, err := db.SetPool(ctx, "warehouse", 0, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(n2, 1, 1, jobs.StatusSucceeded), ev(n3, 1, 1, jobs.StatusSucceeded)}); err != nil {
		t.Fatal(err)
	}
	rel, err = db.ReleasePool(ctx, "warehouse", now, nil)
	if err != nil || len(rel.Released) != 0 {
		t.Fatalf("release of a paused pool: %v, %v", poolRunIDs(rel.Released), err)
	}
	if r := mustGet(t, db, w.RunID); r.StatusReason != "waiting for a slot in pool warehouse (paused: 0 slots; 0 runs still hold one)" {
		t.Errorf("reason %q", r.StatusReason)
	}
	// Raised: released at once.
	if _, _, err := db.SetPool(ctx, "warehouse", 5, now); err != nil {
		t.Fatal(err)
	}
	rel, err = db.ReleasePool(ctx, "warehouse", now, nil)
	if err != nil || !slices.Equal(poolRunIDs(rel.Released), []string{w.RunID}) {
		t.Fatalf("release after raising the slots: %v, %v", poolRunIDs(rel.Released), err)
	}
	mustPool(t, db, "warehouse", 5, 1, 0)
}

// TestPoolDependsOnFirst: a run with dependsOn and a pool is not among
// the pool's waiting runs until its dependencies let it go; then it is.
func TestPoolDependsOnFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	if _, _, err := db.SetPool(ctx, "p", 1, t0); err != nil {
		t.Fatal(err)
	}
	dep := newRun(1)
	r := newRun(2, inPool("p", ""), waitsFor(dep.RunID))
	mustCreate(t, db, dep)
	mustCreate(t, db, r)
	mustPool(t, db, "p", 1, 0, 0)
	if rel, err := db.ReleasePool(ctx, "p", t0, nil); err != nil || len(rel.Released) != 0 {
		t.Fatalf("release while it waits for its dependency: %v, %v", poolRunIDs(rel.Released), err)
	}
	if _, err := db.UpdateRun(ctx, r.RunID, func(r *jobs.Run) bool {
		changed, _ := r.ResolveDependencies(t0, func(string) (jobs.Status, bool) { return jobs.StatusSucceeded, true })
		return changed
	}); err != nil {
		t.Fatal(err)
	}
	mustPool(t, db, "p", 1, 0, 1)
	un, _ := db.Unpublished(ctx)
	if slices.Contains(ids(un), r.RunID) {
		t.Error("a run waiting for a slot is among the unpublished")
	}
	if rel, err := db.ReleasePool(ctx, "p", t0, nil); err != nil || !slices.Equal(poolRunIDs(rel.Released), []string{r.RunID}) {
		t.Fatalf("release: %v, %v", poolRunIDs(rel.Released), err)
	}
}

// TestPoolDelete: a delete names the runs of the pool, check may refuse
// it; a release of a pool that is gone names the runs that wait for it.
func TestPoolDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	if _, _, _, err := db.DeletePool(ctx, "nope", t0, nil); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("delete of a missing pool: %v, want not found", err)
	}
	if _, _, err := db.SetPool(ctx, "p", 1, t0); err != nil {
		t.Fatal(err)
	}
	a, b := newRun(1, inPool("p", "")), newRun(2, inPool("p", ""))
	mustCreate(t, db, a)
	mustCreate(t, db, b)
	if _, err := db.ReleasePool(ctx, "p", t0, nil); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	_, _, _, err := db.DeletePool(ctx, "p", t0, func(runs []PoolRun) error {
		want := []PoolRun{{a.RunID, jobs.PoolHolding}, {b.RunID, jobs.PoolWaiting}}
		if !slices.Equal(runs, want) {
			t.Errorf("runs %v, want %v", runs, want)
		}
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("refused delete: %v", err)
	}
	mustPool(t, db, "p", 1, 1, 1)
	if got, err := db.GetRun(ctx, b.RunID); err != nil || got.Status != jobs.StatusQueued {
		t.Fatalf("a refused delete changed the waiting run: %+v, %v", got, err)
	}
	c := newRun(3, inPool("p", ""))
	mustCreate(t, db, c)
	// A store written before deletes failed the waiting runs: a pool gone
	// under a waiting run, which the release names.
	if _, err := db.w.ExecContext(ctx, `DELETE FROM pools WHERE name = 'p'`); err != nil {
		t.Fatal(err)
	}
	rel, err := db.ReleasePool(ctx, "p", t0, nil)
	if err != nil || !slices.Equal(rel.Orphans, []string{b.RunID, c.RunID}) || len(rel.Released) != 0 {
		t.Fatalf("release of a deleted pool: %+v, %v", rel, err)
	}
	if got, err := db.PoolsInUse(ctx); err != nil || !slices.Equal(got, []string{"p"}) {
		t.Errorf("pools in use: %v, %v", got, err)
	}
	if pools, err := db.ListPools(ctx); err != nil || len(pools) != 0 {
		t.Errorf("pools: %v, %v", pools, err)
	}
}

// TestPoolKeptSlot: a run stopped after a worker took its job keeps its
// slot, counted in use (GetPool, ListPools, the release), listed by
// KeptSlots, until the worker's end of that attempt is applied
// (ApplyEvents says it freed the slot) or FreeSlot frees it; the store
// reopened keeps it as it was.
func TestPoolKeptSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openDB(t)
	if _, _, err := db.SetPool(ctx, "p", 1, t0); err != nil {
		t.Fatal(err)
	}
	a, b, c := newRun(1, inPool("p", "")), newRun(2, inPool("p", "")), newRun(3, inPool("p", ""))
	for _, r := range []*jobs.Run{a, b, c} {
		mustCreate(t, db, r)
	}
	if rel, err := db.ReleasePool(ctx, "p", t0, nil); err != nil || !slices.Equal(poolRunIDs(rel.Released), []string{a.RunID}) {
		t.Fatalf("first release: %v, %v", rel, err)
	}
	stop := func(id string) {
		t.Helper()
		if _, err := db.UpdateRun(ctx, id, func(r *jobs.Run) bool { return r.CancelTaken(t0, "stopped", 1, "w1") }); err != nil {
			t.Fatal(err)
		}
	}
	kept := func(want ...string) {
		t.Helper()
		runs, err := db.KeptSlots(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(runs); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("kept slots: %v, want %v", got, want)
		}
	}
	stop(a.RunID)
	mustPool(t, db, "p", 1, 1, 2)
	kept(a.RunID)
	if rel, err := db.ReleasePool(ctx, "p", t0, nil); err != nil || len(rel.Released) != 0 {
		t.Fatalf("release while the slot is kept: %v, %v", poolRunIDs(rel.Released), err)
	}
	if pools, err := db.ListPools(ctx); err != nil || len(pools) != 1 || pools[0].InUse != 1 {
		t.Errorf("pools: %+v, %v", pools, err)
	}
	_, _, _, err := db.DeletePool(ctx, "p", t0, func(runs []PoolRun) error {
		if want := (PoolRun{a.RunID, jobs.PoolKept}); len(runs) == 0 || runs[0] != want {
			t.Errorf("runs of the pool %v, want %v first", runs, want)
		}
		return errors.New("refused")
	})
	if err == nil {
		t.Fatal("delete not refused")
	}

	// Reopened: the same.
	db.Close()
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mustPool(t, db, "p", 1, 1, 2)
	kept(a.RunID)

	// A start of the attempt frees nothing; its end does.
	applied, err := db.ApplyEvents(ctx, []jobs.Event{ev(a, 1, 1, jobs.StatusStarting)})
	if err != nil || len(applied) != 0 {
		t.Fatalf("a start of the stopped attempt: %+v, %v", applied, err)
	}
	mustPool(t, db, "p", 1, 1, 2)
	applied, err = db.ApplyEvents(ctx, []jobs.Event{ev(a, 1, 2, jobs.StatusCanceled)})
	if err != nil || len(applied) != 1 || !applied[0].SlotFreed || applied[0].Before != jobs.StatusCanceled || applied[0].Status != jobs.StatusCanceled {
		t.Fatalf("the stopped attempt's end: %+v, %v; want the slot freed", applied, err)
	}
	mustPool(t, db, "p", 1, 0, 2)
	kept()

	// FreeSlot frees what the sweep finds free.
	if rel, err := db.ReleasePool(ctx, "p", t0, nil); err != nil || !slices.Equal(poolRunIDs(rel.Released), []string{b.RunID}) {
		t.Fatalf("release after the end: %v, %v", rel, err)
	}
	stop(b.RunID)
	kept(b.RunID)
	if _, err := db.UpdateRun(ctx, b.RunID, func(r *jobs.Run) bool { return r.FreeSlot() }); err != nil {
		t.Fatal(err)
	}
	mustPool(t, db, "p", 1, 0, 1)
	kept()
}

// TestPoolDeleteThenRecreate: a forced delete fails the runs that waited
// for the pool in its own transaction, so a pool of the same name set
// right after (before any release ran) never gives them a slot, and
// starts with only the slots of the runs that still hold one counted in
// use: they run on, and still load what the pool guards.
func TestPoolDeleteThenRecreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	if _, _, err := db.SetPool(ctx, "p", 1, t0); err != nil {
		t.Fatal(err)
	}
	a, b := newRun(1, inPool("p", "")), newRun(2, inPool("p", ""))
	mustCreate(t, db, a)
	mustCreate(t, db, b)
	if _, err := db.ReleasePool(ctx, "p", t0, nil); err != nil {
		t.Fatal(err)
	}
	runs, failed, _, err := db.DeletePool(ctx, "p", t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []PoolRun{{a.RunID, jobs.PoolHolding}, {b.RunID, jobs.PoolWaiting}}; !slices.Equal(runs, want) {
		t.Errorf("runs %v, want %v", runs, want)
	}
	if got := poolRunIDs(failed); !slices.Equal(got, []string{b.RunID}) || failed[0].Status != jobs.StatusFailed {
		t.Errorf("failed %v, want %s FAILED", got, b.RunID)
	}
	if _, created, err := db.SetPool(ctx, "p", 5, t0); err != nil || !created {
		t.Fatalf("set again: created %v, %v", created, err)
	}
	mustPool(t, db, "p", 5, 1, 0)
	rel, err := db.ReleasePool(ctx, "p", t0, nil)
	if err != nil || len(rel.Released) != 0 || len(rel.Orphans) != 0 {
		t.Fatalf("release of the new pool: released %v, orphans %v, %v", poolRunIDs(rel.Released), rel.Orphans, err)
	}
	got, err := db.GetRun(ctx, b.RunID)
	if err != nil || got.Status != jobs.StatusFailed || got.StoppedReason != "pool p was deleted while this run waited for a slot in it" {
		t.Fatalf("the waiting run: %+v, %v", got, err)
	}
}

// TestPoolDeleteRacesSet: forced deletes and sets of one pool, called at
// once against the real store, over and over: every run a delete saw
// waiting is failed, none of them ever takes a slot, and the pool's
// counts after each round are those of the runs that hold a slot.
func TestPoolDeleteRacesSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	holder := newRun(1, inPool("p", ""))
	if _, _, err := db.SetPool(ctx, "p", 1, t0); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, db, holder)
	if rel, err := db.ReleasePool(ctx, "p", t0, nil); err != nil || len(rel.Released) != 1 {
		t.Fatalf("first release: %v, %v", rel, err)
	}
	for i := range 20 {
		if _, _, err := db.SetPool(ctx, "p", 1, t0); err != nil {
			t.Fatal(err)
		}
		w := newRun(100+i, inPool("p", ""))
		mustCreate(t, db, w)
		var (
			wg      sync.WaitGroup
			failed  []*jobs.Run
			delErr  error
			relSeen []string
		)
		wg.Add(3)
		go func() {
			defer wg.Done()
			_, failed, _, delErr = db.DeletePool(ctx, "p", t0, nil)
		}()
		go func() {
			defer wg.Done()
			if _, _, err := db.SetPool(ctx, "p", 3, t0); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			rel, err := db.ReleasePool(ctx, "p", t0, nil)
			if err != nil {
				t.Error(err)
			}
			relSeen = poolRunIDs(rel.Released)
		}()
		wg.Wait()
		if delErr != nil && !errors.Is(delErr, jobs.ErrNotFound) {
			t.Fatal(delErr)
		}
		got, err := db.GetRun(ctx, w.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if delErr == nil && len(relSeen) == 0 {
			// The delete came before the release, or the release found no
			// free slot: the waiting run failed with the delete.
			if got.Status != jobs.StatusFailed || !slices.Equal(poolRunIDs(failed), []string{w.RunID}) {
				t.Fatalf("round %d: waiting run %s, failed %v; want it failed by the delete", i, got.Status, poolRunIDs(failed))
			}
		}
		// Release again, as the sweep does: a failed run never takes a slot.
		if _, _, err := db.SetPool(ctx, "p", 3, t0); err != nil {
			t.Fatal(err)
		}
		rel, err := db.ReleasePool(ctx, "p", t0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == jobs.StatusFailed && (slices.Contains(relSeen, w.RunID) || slices.Contains(poolRunIDs(rel.Released), w.RunID)) {
			t.Fatalf("round %d: failed run %s took a slot", i, w.RunID)
		}
		if len(rel.Orphans) != 0 {
			t.Fatalf("round %d: orphans left %v", i, rel.Orphans)
		}
		p, err := db.GetPool(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if got.Status != jobs.StatusFailed {
			want = 2 // released into the pool before the delete: it holds a slot
		}
		if p.InUse != want || p.Waiting != 0 {
			t.Fatalf("round %d: pool in use %d, waiting %d; want %d, 0", i, p.InUse, p.Waiting, want)
		}
		if got.Status != jobs.StatusFailed {
			// End it, so the next round starts from the holder alone.
			if _, err := db.UpdateRun(ctx, w.RunID, func(r *jobs.Run) bool {
				r.Status = jobs.StatusSucceeded
				return true
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestPoolEndCheck: ApplyEventsChecking asks its check about a run of a
// pool that the events end while it holds its slot, and no other: one
// that keeps its slot (jobs.Run.KeepSlotFor) is stored so, the slot still
// in use; a check that fails fails the call, nothing stored.
func TestPoolEndCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	if _, _, err := db.SetPool(ctx, "p", 1, t0); err != nil {
		t.Fatal(err)
	}
	a, b, plain := newRun(1, inPool("p", "")), newRun(2, inPool("p", "")), newRun(3)
	for _, r := range []*jobs.Run{a, b, plain} {
		mustCreate(t, db, r)
	}
	if rel, err := db.ReleasePool(ctx, "p", t0, nil); err != nil || !slices.Equal(poolRunIDs(rel.Released), []string{a.RunID}) {
		t.Fatalf("release: %v, %v", rel, err)
	}
	var asked []string
	keep := func(_ context.Context, r *jobs.Run) error {
		asked = append(asked, r.RunID)
		r.KeepSlotFor(t0, 2, "w2")
		return nil
	}
	if _, err := db.ApplyEventsChecking(ctx, []jobs.Event{ev(a, 1, 1, jobs.StatusRunning), ev(plain, 1, 1, jobs.StatusSucceeded)}, keep); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 0 {
		t.Fatalf("asked about %v, which did not end holding a slot", asked)
	}
	failing := func(context.Context, *jobs.Run) error { return errors.New("claims unreachable") }
	if _, err := db.ApplyEventsChecking(ctx, []jobs.Event{ev(a, 1, 2, jobs.StatusSucceeded)}, failing); err == nil {
		t.Fatal("a failed check did not fail the call")
	}
	if r, err := db.GetRun(ctx, a.RunID); err != nil || r.Status != jobs.StatusRunning {
		t.Fatalf("after a failed check: %v, %v; want a still RUNNING", r.Status, err)
	}
	applied, err := db.ApplyEventsChecking(ctx, []jobs.Event{ev(a, 1, 2, jobs.StatusSucceeded)}, keep)
	if err != nil || len(applied) != 1 || applied[0].Status != jobs.StatusSucceeded || applied[0].PoolState() != jobs.PoolKept {
		t.Fatalf("the end: %+v, %v; want SUCCEEDED keeping the slot", applied, err)
	}
	if !slices.Equal(asked, []string{a.RunID}) {
		t.Errorf("asked about %v, want a", asked)
	}
	mustPool(t, db, "p", 1, 1, 1)
	if rel, err := db.ReleasePool(ctx, "p", t0, nil); err != nil || len(rel.Released) != 0 {
		t.Fatalf("release while the slot is kept: %v, %v", poolRunIDs(rel.Released), err)
	}
	applied, err = db.ApplyEventsChecking(ctx, []jobs.Event{ev(a, 2, 1, jobs.StatusFailed)}, keep)
	if err != nil || len(applied) != 1 || !applied[0].SlotFreed {
		t.Fatalf("attempt 2's end: %+v, %v; want the slot freed", applied, err)
	}
	mustPool(t, db, "p", 1, 0, 1)
}
