package server

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// TestRetryQueuedWhenItsBackoffEnds: a retry is queued when its backoff
// ends, not at the sweep's next round: with rounds an hour apart, a
// retry of a 200 ms backoff is queued, and one whose backoff a server
// stopped during is queued by the next server once due. Before, both
// waited for a round (2 s by default: a 1 s backoff started up to 2 s
// late).
func TestRetryQueuedWhenItsBackoffEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nc, q, db := testStack(t)
	stop := startRetryServer(t, ctx, nc, db, q)

	short := failedWithBackoff(t, ctx, nc, db, q, 0.2)
	waitPublished(t, ctx, db, short)

	// Its backoff 1.5 to 3 s, half of it random: the server stops while
	// the retry waits, and the next one queues it once due.
	long := failedWithBackoff(t, ctx, nc, db, q, 3)
	stop()
	startRetryServer(t, ctx, nc, db, q)
	waitPublished(t, ctx, db, long)
}

// TestRepublishTellsOfWaitingRetries: republish, as at start, tells the
// sweep of the earliest retry that waits for its backoff.
func TestRepublishTellsOfWaitingRetries(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	now := time.Now().UTC()
	s := New(db, q, WithClock(func() time.Time { return now }))
	for i, d := range []time.Duration{time.Hour, time.Minute, 2 * time.Minute} {
		at := now.Add(d)
		r := &jobs.Run{RunID: string(rune('a' + i)), Status: jobs.StatusQueued, Cluster: "default", CreatedAt: now,
			Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusFailed}, {Attempt: 2, Status: jobs.StatusQueued, CreatedAt: now, NotBefore: &at}}}
		if _, _, err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.republish(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.retries.take(), now.Add(time.Minute); !got.Equal(want) {
		t.Errorf("told of a retry due at %s; want %s, the earliest", got, want)
	}
}

// startRetryServer starts a server whose sweep's rounds are an hour apart,
// and returns a func that stops it and waits for it.
func startRetryServer(t *testing.T, ctx context.Context, nc *nats.Conn, db *storage.DB, q *queue.Queue) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	s := New(db, q, WithSweepInterval(time.Hour))
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := nc.Request("gantry.api.runs.list", nil, time.Second); err == nil {
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not answer within 10s")
		}
	}
}

// failedWithBackoff submits a run of two attempts whose backoff starts at
// initial seconds, reports its first attempt failed and waits until its
// retry waits for its backoff.
func failedWithBackoff(t *testing.T, ctx context.Context, nc *nats.Conn, db *storage.DB, q *queue.Queue, initial float64) string {
	t.Helper()
	req, _ := json.Marshal(jobs.SubmitRequest{
		TaskDefinition: json.RawMessage(`{"family":"retry","containerDefinitions":[{"name":"main","image":"retry:1","essential":true}]}`),
		RetryStrategy:  &jobs.RetryStrategy{Attempts: 2, Backoff: &jobs.Backoff{InitialSeconds: initial}}})
	msg, err := nc.Request("gantry.api.runs.submit", req, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r jobs.Run
	if err := json.Unmarshal(msg.Data, &r); err != nil || r.RunID == "" {
		t.Fatalf("submit: %s, %v", msg.Data, err)
	}
	one := 1
	if err := q.Report(ctx, &jobs.Event{RunID: r.RunID, Attempt: 1, Seq: 1, Status: jobs.StatusFailed, Source: jobs.SourceWorker,
		Worker: "w1", Time: time.Now().UTC(), StopCode: jobs.StopEssentialExited, ExitCode: &one}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, err := db.GetRun(ctx, r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Attempts) == 2 {
			if got.Current().NotBefore == nil {
				t.Fatalf("run %s: its retry has no backoff: %+v", r.RunID, got.Current())
			}
			return r.RunID
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: no retry within 10s of its failure: %+v", r.RunID, got)
		}
	}
}

// waitPublished waits until the job of run id's retry is in the queue.
func waitPublished(t *testing.T, ctx context.Context, db *storage.DB, id string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		runs, err := db.Unpublished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(runs, func(r jobs.Run) bool { return r.RunID == id }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: its retry was not queued within 15s, with the sweep's rounds an hour apart", id)
		}
	}
}

// TestRepublishLogsWhatItQueued: the sweep's republish said "re-queued
// runs left unpublished" at each round (2 s) for as long as a retry
// waited for its backoff, queuing nothing, and once more at each
// backoff's end for a retry queued on time, as if a crash had left it:
// a retry of a 10-minute backoff wrote 300 such lines. It says so for
// the runs it queued alone, and the timer's on-time retries are no
// leftovers.
func TestRepublishLogsWhatItQueued(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	now := time.Now().UTC()
	var logs syncBuffer
	s := New(db, q, WithClock(func() time.Time { return now }), WithLogger(zerolog.New(&logs)))
	add := func(id string, backoff time.Duration) {
		t.Helper()
		r := &jobs.Run{RunID: id, Status: jobs.StatusQueued, Cluster: "default", CreatedAt: now.Add(-time.Hour),
			Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusFailed}}}
		at := now.Add(backoff)
		r.Attempts = append(r.Attempts, jobs.Attempt{Attempt: 2, Status: jobs.StatusQueued, CreatedAt: now.Add(-time.Minute), NotBefore: &at})
		if _, _, err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	add("a-waits", 10*time.Minute)
	for range 3 { // rounds
		if err := s.republish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := logs.String(); strings.Contains(got, "re-queued") {
		t.Errorf("rounds that queued nothing, a retry waiting, logged:\n%s", got)
	}

	// Its backoff ended: the timer's firing queues it, on time.
	now = now.Add(10 * time.Minute)
	rt := newRetryTimer()
	defer rt.t.Stop()
	s.fireRetries(ctx, rt)
	if rs, err := db.Unpublished(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("the retry due is not queued: %v, %v", rs, err)
	}
	if got := logs.String(); strings.Contains(got, "re-queued") {
		t.Errorf("a retry queued when its backoff ended was logged as left unpublished:\n%s", got)
	}

	// One a round finds due, the timer's firing lost, is re-queued.
	add("b-due", -time.Second)
	if err := s.republish(ctx); err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); strings.Count(got, "re-queued runs left unpublished") != 1 || !strings.Contains(got, `"runs":1`) {
		t.Errorf("a round that queued one run logged:\n%s", got)
	}
}
