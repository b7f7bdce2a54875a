package storage

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func mustAddHook(t *testing.T, db *DB, h jobs.Webhook) {
	t.Helper()
	h.Normalize()
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	h.CreatedAt = t0
	if err := db.AddWebhook(context.Background(), &h); err != nil {
		t.Fatalf("AddWebhook %s: %v", h.Name, err)
	}
}

// outbox returns the event ids queued per hook name.
func outbox(t *testing.T, db *DB) map[string][]string {
	t.Helper()
	ds, err := db.Deliveries(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, d := range ds {
		out[d.Hook] = append(out[d.Hook], d.EventID)
	}
	return out
}

func countDeliveryRows(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.r.QueryRow(`SELECT COUNT(*) FROM webhook_deliveries`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func woke(db *DB) bool {
	select {
	case <-db.Outboxed():
		return true
	default:
		return false
	}
}

// TestNoHookNoOutbox: without a hook, runs that end write no delivery and
// wake no one.
func TestNoHookNoOutbox(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	r := newRun(1)
	mustCreate(t, db, r)
	if _, err := db.ApplyEvents(context.Background(), []jobs.Event{ev(r, 1, 1, jobs.StatusRunning), ev(r, 1, 2, jobs.StatusFailed)}); err != nil {
		t.Fatal(err)
	}
	if n := countDeliveryRows(t, db); n != 0 || woke(db) {
		t.Errorf("%d deliveries, woke %v; want none", n, woke(db))
	}
}

// TestOutboxMatchesEnds: each end is queued, in the transaction that
// stores it, for every hook whose filters it passes (statuses, family,
// pipeline, tags), once; what does not end or ended before queues nothing.
func TestOutboxMatchesEnds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openDB(t)
	mustAddHook(t, db, jobs.Webhook{Name: "fails", URL: "http://127.0.0.1:1/h"}) // FAILED by default
	mustAddHook(t, db, jobs.Webhook{Name: "all-etl", URL: "https://example.com/h", Families: []string{"etl"},
		On: []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}})
	mustAddHook(t, db, jobs.Webhook{Name: "team", URL: "https://example.com/t", Tags: map[string]string{"team": "data"},
		On: []jobs.Status{jobs.StatusFailed, jobs.StatusSucceeded}})
	mustAddHook(t, db, jobs.Webhook{Name: "sales", URL: "https://example.com/s", Pipelines: []string{"sales"},
		On: []jobs.Status{jobs.StatusFailed, jobs.StatusSucceeded}})
	// A failed stage fails its pipeline run: --kind hears of one of them.
	mustAddHook(t, db, jobs.Webhook{Name: "sales-runs", URL: "https://example.com/r", Pipelines: []string{"sales"}, Kind: "runs"})
	mustAddHook(t, db, jobs.Webhook{Name: "sales-prs", URL: "https://example.com/p", Pipelines: []string{"sales"}, Kind: "pipelines"})

	failed, ok, tagged, other, stopped := newRun(1), newRun(2), newRun(3, func(r *jobs.Run) { r.Tags = map[string]string{"team": "data"} }),
		newRun(4, func(r *jobs.Run) { r.TaskDefinition = "load:2" }), newRun(5)
	for _, r := range []*jobs.Run{failed, ok, tagged, other, stopped} {
		mustCreate(t, db, r)
	}
	if n := countDeliveryRows(t, db); n != 0 {
		t.Fatalf("%d deliveries of runs that did not end", n)
	}
	evs := []jobs.Event{ev(failed, 1, 1, jobs.StatusRunning), ev(failed, 1, 2, jobs.StatusFailed),
		ev(ok, 1, 1, jobs.StatusSucceeded), ev(tagged, 1, 1, jobs.StatusSucceeded), ev(other, 1, 1, jobs.StatusRunning)}
	if _, err := db.ApplyEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if !woke(db) {
		t.Error("the sender was not woken")
	}
	// Replayed: nothing changes, nothing more is queued.
	if _, err := db.ApplyEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateRun(ctx, stopped.RunID, func(r *jobs.Run) bool { return r.Cancel(t0, "stopped") }); err != nil {
		t.Fatal(err)
	}
	// other fails through UpdateRun; then a second write of an ended run
	// queues nothing more.
	for range 2 {
		if _, err := db.UpdateRun(ctx, other.RunID, func(r *jobs.Run) bool {
			if r.Status.Terminal() {
				r.StoppedReason += "!"
				return true
			}
			r.Status, r.StoppedReason = jobs.StatusFailed, "boom"
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]string{
		"fails":   {"run/" + failed.RunID, "run/" + other.RunID},
		"all-etl": {"run/" + failed.RunID, "run/" + ok.RunID, "run/" + tagged.RunID, "run/" + stopped.RunID},
		"team":    {"run/" + tagged.RunID},
	}
	got := outbox(t, db)
	for _, ids := range got {
		slices.Sort(ids)
	}
	sameJSON(t, got, want)

	// The body is the event as sent.
	ds, err := db.Deliveries(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var body jobs.WebhookEvent
	if err := json.Unmarshal(ds[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.EventID != ds[0].EventID || body.Kind != "run" || !body.Status.Terminal() || body.Summary == "" {
		t.Errorf("body %+v", body)
	}

	// A pipeline run's end, and its stage runs, for hook sales.
	pr := &jobs.PipelineRun{PipelineRunID: "01PR1", Pipeline: "sales", Status: jobs.StatusRunning, CreatedAt: t0}
	if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
		t.Fatal(err)
	}
	stage := newRun(6, func(r *jobs.Run) {
		r.Spec.Stage = &jobs.StageContext{PipelineRunID: "01PR1", Pipeline: "sales", Stage: "load"}
	})
	mustCreate(t, db, stage)
	if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(stage, 1, 1, jobs.StatusFailed)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdatePipelineRun(ctx, "01PR1", func(pr *jobs.PipelineRun) bool {
		now := t0.Add(time.Hour)
		pr.Status, pr.FinishedAt = jobs.StatusFailed, &now
		return true
	}); err != nil {
		t.Fatal(err)
	}
	got = outbox(t, db)
	if w := []string{"run/" + stage.RunID, "pipelineRun/01PR1"}; !slices.Equal(got["sales"], w) {
		t.Errorf("sales: %v, want %v", got["sales"], w)
	}
	if w := []string{"run/" + stage.RunID}; !slices.Equal(got["sales-runs"], w) {
		t.Errorf("sales-runs (kind runs): %v, want %v", got["sales-runs"], w)
	}
	if w := []string{"pipelineRun/01PR1"}; !slices.Equal(got["sales-prs"], w) {
		t.Errorf("sales-prs (kind pipelines): %v, want %v", got["sales-prs"], w)
	}

	// The hooks are loaded again at Open.
	db.Close()
	db2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	late := newRun(7)
	mustCreate(t, db2, late)
	if _, err := db2.ApplyEvents(ctx, []jobs.Event{ev(late, 1, 1, jobs.StatusFailed)}); err != nil {
		t.Fatal(err)
	}
	if got := outbox(t, db2)["fails"]; !slices.Contains(got, "run/"+late.RunID) {
		t.Errorf("after reopening, fails has %v, want %s", got, late.RunID)
	}
}

// TestWebhookDeliveriesRecorded: a try's result moves the delivery on
// (delivered: gone; retry: later; given up: gone, failed) and shows in
// the hook's listing; a deleted hook drops its deliveries and queues no
// more; a name is taken once.
func TestWebhookDeliveriesRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	mustAddHook(t, db, jobs.Webhook{Name: "h", URL: "http://127.0.0.1:1/h", Secret: "s3cret"})
	if err := db.AddWebhook(ctx, &jobs.Webhook{Name: "h", URL: "http://x/"}); jobs.ErrorCode(err) != jobs.CodeAlreadyExists {
		t.Errorf("a second hook h: %v, want already_exists", err)
	}
	var runs []*jobs.Run
	for i := range 3 {
		r := newRun(i + 1)
		mustCreate(t, db, r)
		runs = append(runs, r)
		if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(r, 1, 1, jobs.StatusFailed)}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := db.Deliveries(ctx, 10)
	if err != nil || len(ds) != 3 {
		t.Fatalf("%d deliveries (%v), want 3", len(ds), err)
	}
	if ds[0].Secret != "s3cret" || ds[0].URL != "http://127.0.0.1:1/h" || !ds[0].NextAt.Equal(time.Unix(0, 0).UTC()) {
		t.Errorf("delivery %+v", ds[0])
	}
	at := t0.Add(time.Hour)
	if _, err := db.RecordDelivery(ctx, &ds[0], DeliveryResult{WebhookTry: jobs.WebhookTry{At: at, Status: 200}, Delivered: true}); err != nil {
		t.Fatal(err)
	}
	retry := at.Add(5 * time.Second)
	if _, err := db.RecordDelivery(ctx, &ds[1], DeliveryResult{WebhookTry: jobs.WebhookTry{At: at, Status: 500}, Retry: retry}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecordDelivery(ctx, &ds[2], DeliveryResult{WebhookTry: jobs.WebhookTry{At: at.Add(time.Second), Error: "connection refused"}}); err != nil {
		t.Fatal(err)
	}
	// Recording a delivery that is gone changes nothing.
	if _, err := db.RecordDelivery(ctx, &ds[0], DeliveryResult{WebhookTry: jobs.WebhookTry{At: at, Status: 200}, Delivered: true}); err != nil {
		t.Fatal(err)
	}
	left, err := db.Deliveries(ctx, 10)
	if err != nil || len(left) != 1 || left[0].ID != ds[1].ID || left[0].Tries != 1 || !left[0].NextAt.Equal(retry) {
		t.Fatalf("left %+v (%v), want %d retried at %v", left, err, ds[1].ID, retry)
	}
	list, err := db.ListWebhooks(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListWebhooks: %+v %v", list, err)
	}
	w := list[0]
	if !w.Signed || w.Secret != "" || w.Pending != 1 || w.Delivered != 1 || w.Failed != 1 ||
		w.Last == nil || w.Last.Error != "connection refused" || !w.Last.At.Equal(at.Add(time.Second)) {
		t.Errorf("listed %+v last %+v", w, w.Last)
	}
	if b, _ := json.Marshal(list); strings.Contains(string(b), "s3cret") {
		t.Errorf("the listing shows the secret: %s", b)
	}

	n, err := db.DeleteWebhook(ctx, "h")
	if err != nil || n != 1 {
		t.Fatalf("DeleteWebhook: dropped %d, %v; want 1", n, err)
	}
	if _, err := db.DeleteWebhook(ctx, "h"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("deleting it again: %v", err)
	}
	r := newRun(9)
	mustCreate(t, db, r)
	if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(r, 1, 1, jobs.StatusFailed)}); err != nil {
		t.Fatal(err)
	}
	if n := countDeliveryRows(t, db); n != 0 {
		t.Errorf("%d deliveries after the hook's delete", n)
	}
	if db.hooksNow() != nil {
		t.Error("the hook set is not empty after the last hook's delete")
	}
	// Added again under the same name: a new hook, none of the old one's counts.
	mustAddHook(t, db, jobs.Webhook{Name: "h", URL: "http://127.0.0.1:1/h"})
	if list, _ := db.ListWebhooks(ctx); len(list) != 1 || list[0].Delivered != 0 || list[0].Last != nil || list[0].Signed {
		t.Errorf("re-added: %+v", list)
	}
}

// TestWebhookFailureGivesUpOldDeliveries: a failed try gives up, in the
// same transaction, the hook's other deliveries older than the give-up
// age (counted failed), not another hook's nor younger ones; each hook's
// deliveries are read apart, in the order they are due.
func TestWebhookFailureGivesUpOldDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	mustAddHook(t, db, jobs.Webhook{Name: "down", URL: "http://127.0.0.1:1/d"})
	mustAddHook(t, db, jobs.Webhook{Name: "up", URL: "http://127.0.0.1:1/u"})
	for i := range 4 {
		r := newRun(i + 1)
		mustCreate(t, db, r)
		if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(r, 1, 1, jobs.StatusFailed)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := db.WebhookIDs()
	if len(ids) != 2 {
		t.Fatalf("WebhookIDs %v", ids)
	}
	down, err := db.HookDeliveries(ctx, ids[0], 10)
	if err != nil || len(down) != 4 || down[0].Hook != "down" || down[3].Hook != "down" {
		t.Fatalf("down's deliveries %+v (%v)", down, err)
	}
	// Runs 1 and 2 ended 30 and 25 hours ago, 3 an hour ago; 4 a minute
	// ago, and is tried now.
	now := t0.Add(100 * time.Hour)
	for i, age := range []time.Duration{30 * time.Hour, 25 * time.Hour, time.Hour, time.Minute} {
		if _, err := db.w.Exec(`UPDATE webhook_deliveries SET created_at = ? WHERE id = ?`, unixNano(now.Add(-age)), down[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	expired, err := db.RecordDelivery(ctx, &down[3], DeliveryResult{WebhookTry: jobs.WebhookTry{At: now, Status: 503, Error: "HTTP 503"},
		Retry: now.Add(time.Minute), Expire: now.Add(-24 * time.Hour)})
	if err != nil || expired != 2 {
		t.Fatalf("RecordDelivery: %d given up (%v), want 2", expired, err)
	}
	left, err := db.HookDeliveries(ctx, ids[0], 10)
	if err != nil || len(left) != 2 || left[0].ID != down[2].ID || left[1].ID != down[3].ID || left[1].Tries != 1 {
		t.Errorf("down keeps %+v (%v), want the hour-old one, then the one tried", left, err)
	}
	up, err := db.HookDeliveries(ctx, ids[1], 10)
	if err != nil || len(up) != 4 {
		t.Errorf("up keeps %d deliveries (%v), want its 4", len(up), err)
	}
	list, err := db.ListWebhooks(ctx)
	if err != nil || list[0].Name != "down" || list[0].Failed != 2 || list[0].Pending != 2 || list[1].Failed != 0 {
		t.Errorf("listed %+v (%v)", list, err)
	}
}

// TestFailingHooks: a hook's failed tries count in a row, a delivery
// starting again from none; FailingHooks lists the hooks counting some,
// with the time of the latest. Migration 0018 counts one for a hook whose
// last try failed.
func TestFailingHooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	mustAddHook(t, db, jobs.Webhook{Name: "a", URL: "http://127.0.0.1:1/a"})
	mustAddHook(t, db, jobs.Webhook{Name: "b", URL: "http://127.0.0.1:1/b"})
	for i := range 4 {
		r := newRun(i + 1)
		mustCreate(t, db, r)
		if _, err := db.ApplyEvents(ctx, []jobs.Event{ev(r, 1, 1, jobs.StatusFailed)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := db.WebhookIDs() // by name: a, b
	record := func(hook int64, at time.Time, delivered bool) {
		t.Helper()
		ds, err := db.HookDeliveries(ctx, hook, 1)
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries of %d: %+v %v", hook, ds, err)
		}
		res := DeliveryResult{WebhookTry: jobs.WebhookTry{At: at, Status: 503, Error: "HTTP 503"}, Retry: at.Add(time.Hour)}
		if delivered {
			res = DeliveryResult{WebhookTry: jobs.WebhookTry{At: at, Status: 200}, Delivered: true}
		}
		if _, err := db.RecordDelivery(ctx, &ds[0], res); err != nil {
			t.Fatal(err)
		}
	}
	failing := func() map[int64]HookFailing {
		t.Helper()
		f, err := db.FailingHooks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := failing(); len(f) != 0 {
		t.Fatalf("failing before any try: %+v", f)
	}
	at := t0.Add(time.Hour)
	record(ids[0], at, false)
	record(ids[0], at.Add(time.Minute), false)
	record(ids[1], at, false)
	record(ids[1], at.Add(time.Minute), true)
	want := map[int64]HookFailing{ids[0]: {Fails: 2, Last: at.Add(time.Minute)}}
	if f := failing(); !maps.Equal(f, want) {
		t.Fatalf("failing %+v, want %+v (b delivered after its failure)", f, want)
	}

	// Undo migration 0018, then apply it again over the hooks.
	for _, stmt := range []string{`ALTER TABLE webhooks DROP COLUMN fails`, `DELETE FROM schema_migrations WHERE version = 18`} {
		if _, err := db.w.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := migrate(ctx, db.w); err != nil {
		t.Fatal(err)
	}
	want[ids[0]] = HookFailing{Fails: 1, Last: at.Add(time.Minute)}
	if f := failing(); !maps.Equal(f, want) {
		t.Fatalf("failing after migration 0018: %+v, want %+v", f, want)
	}
}

// TestWebhookArrayRunTellsEachChildAndItsParent: an array run of 1,000
// children tells a hook of each child's end and then of the parent's, as
// AWS Batch sends a job state change event for the parent and for each
// child; a child's event alone has arrayJobId (and its index), by which
// a receiver leaves the children out, and the parent's has its size and
// summary.
func TestWebhookArrayRunTellsEachChildAndItsParent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	mustAddHook(t, db, jobs.Webhook{Name: "h", URL: "http://127.0.0.1:1/h", On: []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed}})
	const n = 1000
	parent, children := newArray(1, n, "")
	if _, _, _, err := db.CreateArrayRun(ctx, parent, children); err != nil {
		t.Fatal(err)
	}
	var evs []jobs.Event
	for i, c := range children {
		st := jobs.StatusSucceeded
		if i == 7 {
			st = jobs.StatusFailed
		}
		evs = append(evs, ev(c, 1, 1, st))
	}
	if _, err := db.ApplyEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := db.RecomputeArray(ctx, parent.RunID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ds, err := db.Deliveries(ctx, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	var kids, parents int
	for _, d := range ds {
		var e jobs.WebhookEvent
		if err := json.Unmarshal(d.Body, &e); err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		if err := json.Unmarshal(d.Body, &raw); err != nil {
			t.Fatal(err)
		}
		_, hasParent := raw["arrayJobId"]
		switch {
		case e.ID == parent.RunID:
			parents++
			if hasParent || e.ArrayProperties == nil || e.ArrayProperties.Size != n || e.Status != jobs.StatusFailed ||
				e.ArrayProperties.StatusSummary[jobs.StatusSucceeded] != n-1 || e.ArrayProperties.StatusSummary[jobs.StatusFailed] != 1 {
				t.Errorf("the parent's event: %s", d.Body)
			}
		default:
			kids++
			i, ok := jobs.ArrayChildIndex(parent.RunID, e.ID)
			if !ok || e.ArrayJobID != parent.RunID || e.ArrayProperties == nil || e.ArrayProperties.Index == nil || *e.ArrayProperties.Index != i {
				t.Errorf("a child's event: %s", d.Body)
			}
		}
	}
	if kids != n || parents != 1 {
		t.Errorf("%d deliveries of children and %d of the parent, want %d and 1", kids, parents, n)
	}
}
