package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// withLostAnnouncements loses the announcements of the runs lost names on
// their way to NATS, as a server killed between its commit and their
// arrival does: they never settle, and their outbox rows stay.
func withLostAnnouncements(lost func(runID string) bool) Option {
	return func(c *config) { c.lostAnnouncement = lost }
}

// announcedStatuses returns the statuses the server announced for run id,
// in order.
func announcedStatuses(t *testing.T, q *queue.Queue, id string) []jobs.Status {
	t.Helper()
	cons, err := q.JetStream().OrderedConsumer(context.Background(), queue.StreamEvents,
		jetstream.OrderedConsumerConfig{FilterSubjects: []string{queue.EventSubject(id)}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []jobs.Status
	for m := range batch.Messages() {
		if queue.FromServer(m.Headers()) {
			var ev jobs.Event
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			statuses = append(statuses, ev.Status)
		}
	}
	return statuses
}

// waitAnnounced waits for the last status announced for run id to be
// want.
func waitAnnounced(t *testing.T, q *queue.Queue, id string, want jobs.Status) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	natstest.Eventually(t, ctx, fmt.Sprintf("run %s announced %s", id, want), func(ctx context.Context) error {
		ev, err := q.LastStatus(ctx, id)
		switch {
		case err != nil:
			return err
		case ev == nil:
			return fmt.Errorf("nothing announced")
		case ev.Status != want:
			return fmt.Errorf("last announced %s", ev.Status)
		}
		return nil
	})
}

// waitOutboxEmpty waits for the server of e to have cleared its
// announcement outbox.
func waitOutboxEmpty(t *testing.T, db *storage.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	natstest.Eventually(t, ctx, "the announcement outbox cleared", func(ctx context.Context) error {
		rows, err := db.PendingAnnouncements(ctx)
		if err == nil && len(rows) > 0 {
			err = fmt.Errorf("%d rows left: %v", len(rows), rows)
		}
		return err
	})
}

// A queued run stopped by a server killed before the stop's announcement
// reached NATS: the change is in the store with its outbox row, and the
// next server announces it at start, once. A run stopped while nothing
// is lost is announced once, and its row cleared, without a restart.
func TestStopAnnouncedByTheNextServerWhenACrashLostIt(t *testing.T) {
	t.Parallel()
	var lose atomic.Value // the run whose announcements are lost
	lose.Store("")
	e := startAPIOn(t, t.TempDir(), withLostAnnouncements(func(id string) bool { return lose.Load() == id }))
	q := e.queue()
	ctx := context.Background()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var ok, lost jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &ok)
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &lost)
	waitAnnounced(t, q, ok.RunID, jobs.StatusQueued)
	waitAnnounced(t, q, lost.RunID, jobs.StatusQueued)

	e.ok("gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q}`, ok.RunID), nil)
	waitAnnounced(t, q, ok.RunID, jobs.StatusCanceled)
	db := e.openStore()
	defer db.Close()
	waitOutboxEmpty(t, db)

	lose.Store(lost.RunID)
	var stopped jobs.Run
	e.ok("gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q}`, lost.RunID), &stopped)
	if stopped.Status != jobs.StatusCanceled {
		t.Fatalf("stopped run is %s", stopped.Status)
	}
	e.stop()
	rows, err := db.PendingAnnouncements(ctx)
	if err != nil || len(rows) != 1 || rows[0].RunID != lost.RunID {
		t.Fatalf("outbox after the crash: %v (%v), want one row of run %s", rows, err, lost.RunID)
	}
	if got := announcedStatuses(t, q, lost.RunID); len(got) != 1 || got[0] != jobs.StatusQueued {
		t.Fatalf("before the restart, announced %v: want only QUEUED", got)
	}

	e.opts = nil // the next server loses nothing
	e.startServer()
	waitAnnounced(t, q, lost.RunID, jobs.StatusCanceled)
	waitOutboxEmpty(t, db)
	for _, id := range []string{ok.RunID, lost.RunID} {
		if got := announcedStatuses(t, q, id); len(got) != 2 || got[0] != jobs.StatusQueued || got[1] != jobs.StatusCanceled {
			t.Errorf("run %s: announced %v, want [QUEUED CANCELED]", id, got)
		}
	}
}

// A new run stored by a server killed before its QUEUED reached NATS (and
// so before its job's published mark, which waits for it): the next
// server announces its QUEUED at start, once, and queues its job; a
// server started after that announces nothing more. Run "later" waits for
// a backoff, so that nothing but the start's check announces it (the
// sweep gives "now" its placement reason, which it announces as well).
func TestNewRunQueuedAnnouncedByTheNextServerWhenACrashLostIt(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	q := e.queue()
	ctx := context.Background()
	e.stop()
	db := e.openStore()
	defer db.Close()
	// What the crash left: the runs committed, nothing announced, no job.
	createQueued(t, db, "now")
	at := time.Now().UTC()
	later := at.Add(time.Hour)
	if _, _, err := db.CreateRun(ctx, &jobs.Run{RunID: "later", Status: jobs.StatusQueued, Cluster: "default", CreatedAt: at,
		Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: at, NotBefore: &later}}}); err != nil {
		t.Fatal(err)
	}

	e.startServer()
	waitAnnounced(t, q, "now", jobs.StatusQueued)
	waitAnnounced(t, q, "later", jobs.StatusQueued)
	waitOutboxEmpty(t, db)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	natstest.Eventually(t, wctx, "the due run's job published and marked", func(ctx context.Context) error {
		runs, err := db.Unpublished(ctx)
		for _, r := range runs {
			if r.RunID == "now" {
				return fmt.Errorf("run now unpublished")
			}
		}
		return err
	})
	e.stop()
	e.startServer()
	if got := announcedStatuses(t, q, "later"); len(got) != 1 || got[0] != jobs.StatusQueued {
		t.Errorf("announced %v, want one QUEUED", got)
	}
}

// The sweep's change of a run (a queued run failed past its deadline),
// whose announcement a crash lost between the sweep's commit and NATS:
// its outbox row stays, and the next server's start announces the
// stored status.
func TestSweepChangeAnnouncedByTheNextServerWhenACrashLostIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, q, db := testStack(t)
	s := New(db, q, withLostAnnouncements(func(string) bool { return true }))

	now := time.Now().UTC()
	past := now.Add(-time.Minute)
	r := &jobs.Run{RunID: "late", Status: jobs.StatusQueued, Cluster: "default", CreatedAt: past,
		Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: past}},
		Spec:     jobs.RunSpec{ActiveDeadlineSeconds: 1, Deadline: &past}}
	if _, _, err := db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	listed, err := db.GetRun(ctx, "late")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.sweepRun(ctx, listed, nil, map[string]bool{}, newSweepState(), now); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetRun(ctx, "late"); got.Status != jobs.StatusFailed {
		t.Fatalf("the sweep left the run %s", got.Status)
	}
	rows, err := db.PendingAnnouncements(ctx)
	if err != nil || len(rows) != 1 {
		t.Fatalf("outbox: %v (%v), want one row", rows, err)
	}
	if got := announcedStatuses(t, q, "late"); len(got) != 0 {
		t.Fatalf("announced %v, though lost", got)
	}

	next := New(db, q)
	checked, err := next.resyncPending(ctx)
	if err != nil || !checked["late"] {
		t.Fatalf("resyncPending: %v, %v", checked, err)
	}
	waitAnnounced(t, q, "late", jobs.StatusFailed)
	// Its row clears once the announcement is stored and checked.
	actx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { next.keepAnnouncements(actx); close(done) }()
	waitOutboxEmpty(t, db)
	stop()
	<-done
	if got := announcedStatuses(t, q, "late"); len(got) != 1 {
		t.Errorf("announced %v, want one FAILED", got)
	}
}

// A run whose announcement fails while the server runs (here: lost for a
// while, not stored within announceWait would be the same) keeps its
// outbox row, and is checked again until its status is announced.
func TestFailedAnnouncementCheckedAgainWhileTheServerRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, q, db := testStack(t)
	s := New(db, q)
	createQueued(t, db, "r1")
	stored, outbox, err := db.UpdateRunAnnounced(ctx, "r1", func(r *jobs.Run) (bool, bool) {
		return r.Cancel(time.Now().UTC(), "Stopped by user"), true
	})
	if err != nil || outbox == 0 {
		t.Fatalf("update: outbox %d, %v", outbox, err)
	}
	// The publish could not be sent (nil future): checked again.
	s.track(stored.RunID, rowsOf(outbox), false, nil)
	actx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.keepAnnouncements(actx); close(done) }()
	defer func() { stop(); <-done }()
	waitAnnounced(t, q, "r1", jobs.StatusCanceled)
	waitOutboxEmpty(t, db)
	if got := announcedStatuses(t, q, "r1"); len(got) != 1 {
		t.Errorf("announced %v, want one CANCELED", got)
	}
}
