package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/embedded"
)

// TestJobsStreamIdentity: the jobs stream's identity outlives a restart of
// NATS on the same store and changes when the stream is made anew; a
// missing stream is ErrNoJobsStream; empty says whether a job is queued.
func TestJobsStreamIdentity(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() (*Queue, func()) {
		t.Helper()
		ns, err := embedded.Start(embedded.Options{StoreDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := Dial(ctx, ConnOptions{URL: ns.ClientURL()})
		if err != nil {
			ns.Shutdown()
			t.Fatal(err)
		}
		q, err := New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.EnsureStreams(ctx); err != nil {
			t.Fatal(err)
		}
		return q, func() { nc.Close(); ns.Shutdown() }
	}
	q, stop := open()
	first, empty, err := q.JobsStream(ctx)
	if err != nil || first == "" || !empty {
		t.Fatalf("JobsStream = %q, empty %v, %v", first, empty, err)
	}
	if _, err := q.PublishJob(ctx, &jobs.Job{RunID: "r1", Attempt: 1, Cluster: "default"}); err != nil {
		t.Fatal(err)
	}
	if id, empty, err := q.JobsStream(ctx); err != nil || id != first || empty {
		t.Fatalf("with a job queued: %q, empty %v, %v; want %q, not empty", id, empty, err, first)
	}
	stop()

	q, stop = open()
	defer func() { stop() }()
	if id, empty, err := q.JobsStream(ctx); err != nil || id != first || empty {
		t.Fatalf("after a restart: %q, empty %v, %v; want %q with its job", id, empty, err, first)
	}
	if err := q.JetStream().DeleteStream(ctx, StreamJobs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.JobsStream(ctx); !errors.Is(err, ErrNoJobsStream) {
		t.Fatalf("deleted: %v, want ErrNoJobsStream", err)
	}
	if err := q.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	if id, empty, err := q.JobsStream(ctx); err != nil || id == first || !empty {
		t.Fatalf("made anew: %q, empty %v, %v; want another than %q, empty", id, empty, err, first)
	}
}

// TestReportsApplied: a report published is not applied until the
// server's consumer acknowledged it; then it is, and so is every report
// before a position taken on an empty stream.
func TestReportsApplied(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := newQueue(t)
	before, err := q.ReportsPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := q.ReportsApplied(ctx, before); err != nil || !ok {
		t.Fatalf("nothing published: applied %v, %v", ok, err)
	}
	if err := q.Report(ctx, &jobs.Event{RunID: "r1", Attempt: 1, Seq: 1, Status: jobs.StatusRunning,
		Source: jobs.SourceWorker, Worker: "w1", Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	last, err := q.ReportsPosition(ctx)
	if err != nil || last <= before {
		t.Fatalf("position after a report: %d (before %d), %v", last, before, err)
	}
	if ok, err := q.ReportsApplied(ctx, last); err != nil || ok {
		t.Fatalf("report not consumed: applied %v, %v", ok, err)
	}
	done := make(chan error, 1)
	go func() { done <- q.ConsumeEvents(ctx, 10, func(b *EventBatch) { b.Ack() }) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ok, err := q.ReportsApplied(ctx, last)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the report was never seen applied")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
