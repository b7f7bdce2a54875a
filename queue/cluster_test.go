package queue

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// TestReplicatedStreams: on a NATS cluster a server asked for three
// replicas makes gantry's streams and buckets R3, and a worker, which is
// not told the count, can still make its consumers on them: JetStream
// requires a work queue's consumers to have the stream's replicas.
func TestReplicatedStreams(t *testing.T) {
	urls := natstest.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := Dial(ctx, ConnOptions{URL: strings.Join(urls, ",")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	server, err := New(nc, WithReplicas(3))
	if err != nil {
		t.Fatal(err)
	}
	// The cluster elects its meta leader first.
	for {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = server.EnsureStreams(tctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("streams: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	js := server.JetStream()
	for name := range js.StreamNames(ctx).Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().Config.Replicas; n != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, n)
		}
	}
	worker, err := New(nc) // a worker is not told the replica count
	if err != nil {
		t.Fatal(err)
	}
	if _, err := worker.Jobs(ctx, "default", "w1"); err != nil {
		t.Fatalf("worker consumers on R3 streams: %v", err)
	}
	sctx, stop := context.WithCancel(ctx)
	errc := make(chan error, 2)
	go func() { errc <- server.ConsumeSubmissionMsgs(sctx, func(Submission) error { return nil }) }()
	go func() { errc <- server.ConsumeEvents(sctx, 10, func(*EventBatch) {}) }()
	for _, c := range []struct{ stream, name string }{{StreamSubmit, "server"}, {StreamReports, "server"},
		{StreamJobs, "cluster_default"}, {StreamJobs, "worker_w1"}} {
		var ci *jetstream.ConsumerInfo
		for {
			// One ask per try: a consumer whose group has not yet
			// elected its leader leaves the request unanswered.
			actx, acancel := context.WithTimeout(ctx, 2*time.Second)
			cons, err := js.Consumer(actx, c.stream, c.name)
			acancel()
			if err == nil {
				ci = cons.CachedInfo()
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("consumer %s of %s: %v", c.name, c.stream, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if ci.Config.Replicas != 0 && ci.Config.Replicas != 3 {
			t.Errorf("consumer %s of %s has %d replicas, want its stream's 3", c.name, c.stream, ci.Config.Replicas)
		}
	}
	// Stopped, a consumer loop may still be waiting for the reply to its
	// consumer's creation (on a cluster it can exist before the reply
	// comes): a cancellation then is its end, not a failure.
	stop()
	for range 2 {
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	}
}
