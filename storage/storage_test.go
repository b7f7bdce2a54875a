package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// openDB opens a fresh database in a temporary directory and closes it when
// the test ends.
func openDB(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "gantry.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// newRun is a QUEUED run with its first attempt, created i seconds after t0;
// its id sorts by i as ULIDs sort by time.
func newRun(i int, opts ...func(*jobs.Run)) *jobs.Run {
	created := t0.Add(time.Duration(i) * time.Second)
	r := &jobs.Run{
		RunID:          fmt.Sprintf("01RUN%06d", i),
		Status:         jobs.StatusQueued,
		TaskDefinition: "etl:1",
		Cluster:        "default",
		Priority:       jobs.PriorityNormal, // as the server submits it
		CreatedAt:      created,
		Attempts:       []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: created}},
		Spec: jobs.RunSpec{Task: jobs.TaskDefinition{Family: "etl", Revision: 1,
			ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "etl:latest", Command: []string{"run", "--day", "2026-01-01"}}}}},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

func mustCreate(t testing.TB, db *DB, r *jobs.Run) {
	t.Helper()
	if _, created, err := db.CreateRun(context.Background(), r); err != nil || !created {
		t.Fatalf("CreateRun %s: created=%v err=%v", r.RunID, created, err)
	}
}

func mustGet(t testing.TB, db *DB, id string) *jobs.Run {
	t.Helper()
	r, err := db.GetRun(context.Background(), id)
	if err != nil {
		t.Fatalf("GetRun %s: %v", id, err)
	}
	return r
}

func ids(runs []jobs.Run) []string {
	out := []string{}
	for _, r := range runs {
		out = append(out, r.RunID)
	}
	return out
}

func changedIDs(runs []Applied) []string {
	out := []string{}
	for _, r := range runs {
		out = append(out, r.RunID)
	}
	return out
}

func sameJSON(t testing.TB, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("got  %s\nwant %s", g, w)
	}
}

// statusColumn reads the status column itself, which must follow the doc.
func statusColumn(t testing.TB, db *DB, id string) jobs.Status {
	t.Helper()
	var s string
	if err := db.r.QueryRow(`SELECT status FROM runs WHERE run_id = ?`, id).Scan(&s); err != nil {
		t.Fatalf("status column of %s: %v", id, err)
	}
	return jobs.Status(s)
}

func TestOpenMigratesOnceAndUsesWAL(t *testing.T) {
	ctx := context.Background()
	db, path := openDB(t)
	var mode string
	if err := db.r.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := db.w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if _, err := db.r.Exec(`DELETE FROM runs`); err == nil {
		t.Error("reader pool accepted a write")
	}
	mustCreate(t, db, newRun(1))
	db.Close()

	for range 2 {
		db2, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		var n, v int
		if err := db2.r.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		ms, _ := migrations()
		if n != len(ms) || v != ms[len(ms)-1].version {
			t.Errorf("schema_migrations has %d rows up to %d; want %d up to %d", n, v, len(ms), ms[len(ms)-1].version)
		}
		mustGet(t, db2, newRun(1).RunID)
		db2.Close()
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	db, path := openDB(t)
	for _, v := range []int{9998, 9999, 9997} {
		if _, err := db.w.Exec(`INSERT INTO schema_migrations VALUES (?, 'future.sql', 0)`, v); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db2, err := Open(context.Background(), path)
	if err == nil {
		db2.Close()
		t.Fatal("Open accepted a schema newer than it knows")
	}
	// The newest version, whichever the map gave first, and what to do.
	for _, want := range []string{"schema version 9999 is newer", "a newer gantry migrated this store", "restore a backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: does not say %q", err, want)
		}
	}
}

func TestCreateGetList(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	statuses := []jobs.Status{jobs.StatusQueued, jobs.StatusRunning, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusQueued}
	var want []*jobs.Run
	for i, s := range statuses { // ids 01RUN000000 .. 01RUN000004
		r := newRun(i, func(r *jobs.Run) { r.Status = s })
		mustCreate(t, db, r)
		want = append(want, r)
	}
	for _, r := range want {
		sameJSON(t, mustGet(t, db, r.RunID), r)
	}
	if _, err := db.GetRun(ctx, "nope"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("GetRun(nope) = %v; want ErrNotFound", err)
	}

	id := func(i int) string { return newRun(i).RunID }
	tests := []struct {
		name   string
		filter RunFilter
		want   []string
	}{
		{"all newest first", RunFilter{}, []string{id(4), id(3), id(2), id(1), id(0)}},
		{"one status", RunFilter{Statuses: []jobs.Status{jobs.StatusQueued}}, []string{id(4), id(0)}},
		{"two statuses", RunFilter{Statuses: []jobs.Status{jobs.StatusRunning, jobs.StatusFailed}}, []string{id(3), id(1)}},
		{"no match", RunFilter{Statuses: []jobs.Status{jobs.StatusCanceled}}, []string{}},
		{"first page", RunFilter{Limit: 2}, []string{id(4), id(3)}},
		{"second page", RunFilter{Limit: 2, Before: id(3)}, []string{id(2), id(1)}},
		{"last page", RunFilter{Limit: 2, Before: id(1)}, []string{id(0)}},
		{"page with status", RunFilter{Limit: 1, Before: id(4), Statuses: []jobs.Status{jobs.StatusQueued}}, []string{id(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.ListRuns(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("ListRuns(%+v) = %v; want %v", tt.filter, ids(got), tt.want)
			}
		})
	}

	counts, err := db.CountRuns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := map[jobs.Status]int{jobs.StatusQueued: 2, jobs.StatusRunning: 1, jobs.StatusSucceeded: 1, jobs.StatusFailed: 1}
	sameJSON(t, counts, wantCounts)
	if active, err := db.CountActiveRuns(ctx); err != nil || active != (ActiveRuns{Queued: 2, Running: 1}) {
		t.Errorf("CountActiveRuns = %+v, %v; want 2 queued, 1 running", active, err)
	}
}

func TestCreateRunIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	first := newRun(1, func(r *jobs.Run) { r.IdempotencyKey = "nightly-2026-01-01" })
	mustCreate(t, db, first)

	tests := []struct {
		name        string
		run         *jobs.Run
		wantCreated bool
		wantID      string
		wantCode    string
	}{
		{"same key returns the first run", newRun(2, func(r *jobs.Run) { r.IdempotencyKey = "nightly-2026-01-01" }), false, first.RunID, ""},
		{"other key inserts", newRun(3, func(r *jobs.Run) { r.IdempotencyKey = "nightly-2026-01-02" }), true, newRun(3).RunID, ""},
		{"no key inserts", newRun(4), true, newRun(4).RunID, ""},
		{"no key again inserts", newRun(5), true, newRun(5).RunID, ""},
		{"taken run id", newRun(1), false, "", jobs.CodeAlreadyExists},
		{"empty run id", newRun(6, func(r *jobs.Run) { r.RunID = "" }), false, "", jobs.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, created, err := db.CreateRun(ctx, tt.run)
			if tt.wantCode != "" {
				if err == nil || jobs.ErrorCode(err) != tt.wantCode {
					t.Fatalf("CreateRun err = %v (code %s); want code %s", err, jobs.ErrorCode(err), tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if created != tt.wantCreated || got.RunID != tt.wantID {
				t.Errorf("CreateRun = %s, created=%v; want %s, created=%v", got.RunID, created, tt.wantID, tt.wantCreated)
			}
		})
	}
	if _, err := db.GetRun(ctx, newRun(2).RunID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("the deduplicated run was stored: %v", err)
	}
}

func ev(run *jobs.Run, attempt, seq int, s jobs.Status, opts ...func(*jobs.Event)) jobs.Event {
	e := jobs.Event{RunID: run.RunID, Attempt: attempt, Seq: seq, Status: s, Source: jobs.SourceWorker,
		Worker: "w1", Time: t0.Add(time.Duration(seq) * time.Minute)}
	if s.Terminal() {
		code := 0
		if s == jobs.StatusFailed {
			code = 1
		}
		e.ExitCode = &code
		e.StopCode = jobs.StopEssentialExited
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func TestApplyEvents(t *testing.T) {
	ctx := context.Background()
	a, b := newRun(1), newRun(2)
	type batch struct {
		evs         []jobs.Event
		wantChanged []string
	}
	tests := []struct {
		name    string
		batches []batch
		want    map[string]jobs.Status // run id → status after all batches
		check   func(t *testing.T, db *DB)
	}{
		{
			name: "lifecycle one event per batch",
			batches: []batch{
				{[]jobs.Event{ev(a, 1, 1, jobs.StatusStarting)}, []string{a.RunID}},
				{[]jobs.Event{ev(a, 1, 2, jobs.StatusRunning)}, []string{a.RunID}},
				{[]jobs.Event{ev(a, 1, 3, jobs.StatusSucceeded)}, []string{a.RunID}},
			},
			want: map[string]jobs.Status{a.RunID: jobs.StatusSucceeded, b.RunID: jobs.StatusQueued},
			check: func(t *testing.T, db *DB) {
				r := mustGet(t, db, a.RunID)
				if r.Worker != "w1" || r.StartedAt == nil || r.FinishedAt == nil || r.ExitCode == nil || *r.ExitCode != 0 ||
					r.Attempts[0].Seq != 3 || r.Attempts[0].Status != jobs.StatusSucceeded {
					t.Errorf("run after lifecycle: %+v", r)
				}
			},
		},
		{
			name: "lifecycle in one batch, two runs, each returned once",
			batches: []batch{{[]jobs.Event{
				ev(a, 1, 1, jobs.StatusStarting), ev(b, 1, 1, jobs.StatusStarting),
				ev(a, 1, 2, jobs.StatusRunning), ev(b, 1, 2, jobs.StatusRunning),
				ev(a, 1, 3, jobs.StatusSucceeded),
			}, []string{a.RunID, b.RunID}}},
			want: map[string]jobs.Status{a.RunID: jobs.StatusSucceeded, b.RunID: jobs.StatusRunning},
		},
		{
			name: "replayed events change nothing",
			batches: []batch{
				{[]jobs.Event{ev(a, 1, 1, jobs.StatusStarting), ev(a, 1, 2, jobs.StatusRunning)}, []string{a.RunID}},
				{[]jobs.Event{ev(a, 1, 2, jobs.StatusRunning)}, []string{}},
				{[]jobs.Event{ev(a, 1, 1, jobs.StatusStarting), ev(a, 1, 2, jobs.StatusRunning)}, []string{}},
			},
			want: map[string]jobs.Status{a.RunID: jobs.StatusRunning},
		},
		{
			name: "older seq after newer is ignored",
			batches: []batch{
				{[]jobs.Event{ev(a, 1, 2, jobs.StatusRunning)}, []string{a.RunID}},
				{[]jobs.Event{ev(a, 1, 1, jobs.StatusStarting)}, []string{}},
			},
			want: map[string]jobs.Status{a.RunID: jobs.StatusRunning},
		},
		{
			name: "out of order within a batch is sorted by seq",
			batches: []batch{
				{[]jobs.Event{ev(a, 1, 3, jobs.StatusSucceeded), ev(a, 1, 2, jobs.StatusRunning)}, []string{a.RunID}},
			},
			want: map[string]jobs.Status{a.RunID: jobs.StatusSucceeded},
			check: func(t *testing.T, db *DB) {
				if r := mustGet(t, db, a.RunID); r.StartedAt == nil {
					t.Error("RUNNING event sorted before SUCCEEDED was not applied: no StartedAt")
				}
			},
		},
		{
			name: "unknown runs and server events are skipped",
			batches: []batch{
				{[]jobs.Event{
					ev(newRun(99), 1, 1, jobs.StatusRunning),
					ev(a, 1, 1, jobs.StatusRunning, func(e *jobs.Event) { e.Source = jobs.SourceServer }),
				}, []string{}},
				{nil, []string{}},
			},
			want: map[string]jobs.Status{a.RunID: jobs.StatusQueued},
		},
		{
			name: "events after the run ended change nothing",
			batches: []batch{
				{[]jobs.Event{ev(a, 1, 1, jobs.StatusFailed)}, []string{a.RunID}},
				{[]jobs.Event{ev(a, 1, 2, jobs.StatusRunning)}, []string{}},
			},
			want: map[string]jobs.Status{a.RunID: jobs.StatusFailed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openDB(t)
			mustCreate(t, db, newRun(1))
			mustCreate(t, db, newRun(2))
			for i, bt := range tt.batches {
				got, err := db.ApplyEvents(ctx, bt.evs)
				if err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
				if !slices.Equal(changedIDs(got), bt.wantChanged) {
					t.Errorf("batch %d changed %v; want %v", i, changedIDs(got), bt.wantChanged)
				}
				for _, r := range got { // what is returned is what is stored
					stored := mustGet(t, db, r.RunID)
					if len(stored.Spec.Task.ContainerDefinitions) == 0 {
						t.Errorf("batch %d: run %s stored without its task definition", i, r.RunID)
					}
					if r.Status != jobs.StatusQueued { // only a QUEUED run's task comes back
						stored.Spec.Task = jobs.TaskDefinition{}
					}
					sameJSON(t, r.Run, stored)
				}
			}
			for id, s := range tt.want {
				if r := mustGet(t, db, id); r.Status != s {
					t.Errorf("run %s status %s; want %s", id, r.Status, s)
				}
				if c := statusColumn(t, db, id); c != s {
					t.Errorf("run %s status column %s; want %s", id, c, s)
				}
			}
			if tt.check != nil {
				tt.check(t, db)
			}
		})
	}
}

// TestApplyEventsTellsTheStateBefore: each run returned says what it was
// before the call, from which the server's metrics tell a run that
// started or ended in the batch from one that had already.
func TestApplyEventsTellsTheStateBefore(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	a, b := newRun(1), newRun(2)
	mustCreate(t, db, a)
	mustCreate(t, db, b)
	type state struct {
		before        jobs.Status
		startedBefore bool
		now           jobs.Status
	}
	for i, step := range []struct {
		evs  []jobs.Event
		want map[string]state
	}{
		{[]jobs.Event{ev(a, 1, 1, jobs.StatusStarting), ev(b, 1, 1, jobs.StatusStarting), ev(b, 1, 2, jobs.StatusRunning)},
			map[string]state{a.RunID: {jobs.StatusQueued, false, jobs.StatusStarting}, b.RunID: {jobs.StatusQueued, false, jobs.StatusRunning}}},
		{[]jobs.Event{ev(a, 1, 2, jobs.StatusRunning), ev(a, 1, 3, jobs.StatusSucceeded), ev(b, 1, 3, jobs.StatusFailed)},
			map[string]state{a.RunID: {jobs.StatusStarting, false, jobs.StatusSucceeded}, b.RunID: {jobs.StatusRunning, true, jobs.StatusFailed}}},
	} {
		got, err := db.ApplyEvents(ctx, step.evs)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if len(got) != len(step.want) {
			t.Fatalf("step %d: changed %v; want %d runs", i, changedIDs(got), len(step.want))
		}
		for _, r := range got {
			if s := (state{r.Before, r.StartedBefore, r.Status}); s != step.want[r.RunID] {
				t.Errorf("step %d: run %s %+v; want %+v", i, r.RunID, s, step.want[r.RunID])
			}
		}
	}
}

func TestRetryAndUnpublished(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	r := newRun(1, func(r *jobs.Run) { r.Spec.RetryStrategy = &jobs.RetryStrategy{Attempts: 2} })
	other := newRun(2)
	mustCreate(t, db, r)
	mustCreate(t, db, other)

	unpublished := func(want ...string) {
		t.Helper()
		got, err := db.Unpublished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = []string{}
		}
		if !slices.Equal(ids(got), want) {
			t.Errorf("Unpublished = %v; want %v", ids(got), want)
		}
	}
	unpublished(r.RunID, other.RunID)
	for _, x := range []*jobs.Run{r, other} {
		if err := db.MarkPublished(ctx, x.RunID, 1); err != nil {
			t.Fatal(err)
		}
	}
	unpublished()

	if _, err := db.ApplyEvents(ctx, []jobs.Event{
		ev(r, 1, 1, jobs.StatusStarting), ev(r, 1, 2, jobs.StatusRunning), ev(r, 1, 3, jobs.StatusFailed),
	}); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, db, r.RunID)
	if got.Status != jobs.StatusQueued || len(got.Attempts) != 2 || got.Attempts[0].Status != jobs.StatusFailed ||
		got.Attempts[1].Status != jobs.StatusQueued || got.FinishedAt != nil {
		t.Fatalf("after failed attempt 1: %+v", got)
	}
	if c := statusColumn(t, db, r.RunID); c != jobs.StatusQueued {
		t.Errorf("status column %s; want QUEUED", c)
	}
	unpublished(r.RunID)

	// A late mark of attempt 1 (say, a retried publish) does not hide attempt 2.
	if err := db.MarkPublished(ctx, r.RunID, 1); err != nil {
		t.Fatal(err)
	}
	unpublished(r.RunID)
	if err := db.MarkPublished(ctx, r.RunID, 2); err != nil {
		t.Fatal(err)
	}
	unpublished()
	if err := db.MarkPublished(ctx, r.RunID, 1); err != nil { // never goes back
		t.Fatal(err)
	}
	unpublished()
	if err := db.MarkPublished(ctx, "nope", 1); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("MarkPublished(nope) = %v; want ErrNotFound", err)
	}

	// Attempt 2 fails too: no third try.
	if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(r, 2, 1, jobs.StatusRunning), ev(r, 2, 2, jobs.StatusFailed)}); err != nil {
		t.Fatal(err)
	}
	got = mustGet(t, db, r.RunID)
	if got.Status != jobs.StatusFailed || len(got.Attempts) != 2 || got.FinishedAt == nil {
		t.Fatalf("after failed attempt 2: %+v", got)
	}
	// A straggler of attempt 1 changes nothing.
	if ch, err := db.ApplyEvents(ctx, []jobs.Event{ev(r, 1, 4, jobs.StatusRunning)}); err != nil || len(ch) != 0 {
		t.Errorf("straggler of attempt 1: changed %v, %v", changedIDs(ch), err)
	}
}

func TestUpdateRunCancel(t *testing.T) {
	ctx := context.Background()
	cancel := func(r *jobs.Run) bool { return r.Cancel(t0.Add(time.Hour), "stopped by user") }
	tests := []struct {
		name   string
		events []jobs.Event // applied to run 1 before the cancel
		want   jobs.Status
	}{
		{"queued run is canceled", nil, jobs.StatusCanceled},
		{"running run is not", []jobs.Event{ev(newRun(1), 1, 1, jobs.StatusRunning)}, jobs.StatusRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openDB(t)
			r := newRun(1)
			mustCreate(t, db, r)
			if _, err := db.ApplyEvents(ctx, tt.events); err != nil {
				t.Fatal(err)
			}
			got, err := db.UpdateRun(ctx, r.RunID, cancel)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.want {
				t.Errorf("UpdateRun returned status %s; want %s", got.Status, tt.want)
			}
			sameJSON(t, got, mustGet(t, db, r.RunID))
			if c := statusColumn(t, db, r.RunID); c != tt.want {
				t.Errorf("status column %s; want %s", c, tt.want)
			}
		})
	}

	db, _ := openDB(t)
	if _, err := db.UpdateRun(ctx, "nope", cancel); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("UpdateRun(nope) = %v; want ErrNotFound", err)
	}
	mustCreate(t, db, newRun(1))
	// fn that scribbles and then declines leaves the stored run as it was.
	got, err := db.UpdateRun(ctx, newRun(1).RunID, func(r *jobs.Run) bool { r.Cluster = "scribbled"; return false })
	if err != nil || got.Cluster != "default" || mustGet(t, db, got.RunID).Cluster != "default" {
		t.Errorf("declined update: %+v, %v", got, err)
	}
	if _, err := db.UpdateRun(ctx, newRun(1).RunID, func(r *jobs.Run) bool { r.RunID = "other"; return true }); err == nil {
		t.Error("UpdateRun let fn change the run id")
	}
}

func TestReopenKeepsHistory(t *testing.T) {
	ctx := context.Background()
	db, path := openDB(t)
	done := newRun(1, func(r *jobs.Run) { r.IdempotencyKey = "k1" })
	retried := newRun(2, func(r *jobs.Run) { r.Spec.RetryStrategy = &jobs.RetryStrategy{Attempts: 2} })
	mustCreate(t, db, done)
	mustCreate(t, db, retried)
	for _, r := range []*jobs.Run{done, retried} {
		if err := db.MarkPublished(ctx, r.RunID, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ApplyEvents(ctx, []jobs.Event{
		ev(done, 1, 1, jobs.StatusRunning), ev(done, 1, 2, jobs.StatusSucceeded),
		ev(retried, 1, 1, jobs.StatusFailed),
	}); err != nil {
		t.Fatal(err)
	}
	before := map[string]*jobs.Run{done.RunID: mustGet(t, db, done.RunID), retried.RunID: mustGet(t, db, retried.RunID)}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for id, want := range before {
		sameJSON(t, mustGet(t, db, id), want)
	}
	if un, err := db.Unpublished(ctx); err != nil || !slices.Equal(ids(un), []string{retried.RunID}) {
		t.Errorf("Unpublished after reopen = %v, %v; want [%s]", ids(un), err, retried.RunID)
	}
	if got, created, err := db.CreateRun(ctx, newRun(3, func(r *jobs.Run) { r.IdempotencyKey = "k1" })); err != nil || created || got.RunID != done.RunID {
		t.Errorf("idempotency key after reopen: %v created=%v %v", got, created, err)
	}
	// A replay of what was applied before the restart changes nothing.
	if ch, err := db.ApplyEvents(ctx, []jobs.Event{ev(done, 1, 2, jobs.StatusSucceeded), ev(retried, 1, 1, jobs.StatusFailed)}); err != nil || len(ch) != 0 {
		t.Errorf("replay after reopen changed %v, %v", changedIDs(ch), err)
	}
}

func TestOpenOddPaths(t *testing.T) {
	for _, dir := range []string{"with space", "q?mark", "hash#and%25percent", "new/nested/dirs"} {
		t.Run(dir, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), dir, "gantry.db")
			db, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			mustCreate(t, db, newRun(1))
			var file string
			if err := db.r.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
				t.Fatal(err)
			}
			if file != path {
				t.Errorf("database file is %q; want %q", file, path)
			}
		})
	}
}

// Readers run beside the writer (WAL) without busy errors.
func TestConcurrentReadersAndWriter(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	runs := make([]*jobs.Run, 50)
	for i := range runs {
		runs[i] = newRun(i)
		mustCreate(t, db, runs[i])
	}
	stop := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.ListRuns(ctx, RunFilter{Statuses: []jobs.Status{jobs.StatusRunning}, Limit: 10}); err != nil {
					errs <- err
					return
				}
				if _, err := db.CountRuns(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for seq := 1; seq <= 40; seq++ {
		var batch []jobs.Event
		for _, r := range runs {
			batch = append(batch, ev(r, 1, seq, jobs.StatusRunning))
		}
		if _, err := db.ApplyEvents(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateRun(ctx, runs[0].RunID, func(*jobs.Run) bool { return true }); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The hot writes run their statements without the caller's cancellation,
// so they look at it before they begin: a caller that gave up stores
// nothing.
func TestHotWritesRefuseAnEndedContext(t *testing.T) {
	db, _ := openDB(t)
	a := newRun(1)
	if _, _, err := db.CreateRun(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.ApplyEvents(ended, []jobs.Event{ev(a, 1, 1, jobs.StatusStarting)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ApplyEvents: %v, want context.Canceled", err)
	}
	if _, _, err := db.CreateRun(ended, newRun(2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateRun: %v, want context.Canceled", err)
	}
	if err := db.MarkPublished(ended, a.RunID, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("MarkPublished: %v, want context.Canceled", err)
	}
	if r := mustGet(t, db, a.RunID); r.Status != jobs.StatusQueued {
		t.Fatalf("run %s after a cancelled apply, want QUEUED", r.Status)
	}
	if _, err := db.GetRun(context.Background(), newRun(2).RunID); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("run 2 after a cancelled create: %v, want not found", err)
	}
}

// TestRunsHaveNoCreatedAtIndex: migration 0006 drops the index nothing
// read, in new databases and in those made before it.
func TestRunsHaveNoCreatedAtIndex(t *testing.T) {
	db, path := openDB(t)
	hasIndex := func(db *DB) bool {
		t.Helper()
		var n int
		if err := db.r.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'runs_created_at'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	if hasIndex(db) {
		t.Fatal("a new database has runs_created_at")
	}
	// A database from before 0006: the index back, the migration unrecorded.
	if _, err := db.w.Exec(`CREATE INDEX runs_created_at ON runs (created_at); DELETE FROM schema_migrations WHERE version = 6`); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, db, newRun(1))
	db.Close()
	db2, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if hasIndex(db2) {
		t.Error("runs_created_at is still there after the migration")
	}
	mustGet(t, db2, newRun(1).RunID)
}

// TestRunStoredBeforePrioritiesIsNormal: a run document without a
// priority (stored by an older gantry) reads as normal.
func TestRunStoredBeforePrioritiesIsNormal(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	old := newRun(1, func(r *jobs.Run) { r.Priority = "" })
	if _, _, err := db.CreateRun(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, db, old.RunID); got.Priority != jobs.PriorityNormal {
		t.Errorf("GetRun: priority %q, want normal", got.Priority)
	}
	runs, err := db.ListRuns(ctx, RunFilter{})
	if err != nil || len(runs) != 1 || runs[0].Priority != jobs.PriorityNormal {
		t.Errorf("ListRuns: %+v, %v", runs, err)
	}
}
