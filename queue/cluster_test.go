package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
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

// TestKeepsHandScaledReplicas: a server not told the replica count (no
// --replicas, no GANTRY_REPLICAS) keeps the count of the streams and
// buckets that exist, which an operator may have raised by hand (nats
// stream edit --replicas 3); it set them all back to 1 at every start. So
// does a worker that makes the fleet's buckets again. New ones get 1, and
// a count the server is told is applied.
func TestKeepsHandScaledReplicas(t *testing.T) {
	urls := natstest.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nc, err := Dial(ctx, ConnOptions{URL: strings.Join(urls, ",")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	first, err := New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ensureAll(t, ctx, first)
	js := first.JetStream()
	// A cluster just formed may change its meta leader, and a new one
	// can list streams before it has applied the last one made (CI: the
	// stage data bucket's missing once): the listing is asked again.
	var names []string
	natstest.Eventually(t, ctx, "list streams", func(ctx context.Context) error {
		names = names[:0]
		l := js.StreamNames(ctx)
		for name := range l.Name() {
			names = append(names, name)
		}
		if err := l.Err(); err != nil {
			return err
		}
		if len(names) != 10 { // 5 streams, 4 key-value buckets, the stage data bucket
			return fmt.Errorf("streams %v, want gantry's 10", names)
		}
		return nil
	})
	wantReplicas(t, ctx, js, names, 1)

	for _, name := range names { // the operator scales them by hand
		natstest.ScaleStream(t, ctx, js, name, 3)
	}
	second, err := New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ensureAll(t, ctx, second)
	wantReplicas(t, ctx, js, names, 3)

	// A worker (not told the count either) whose heartbeat bucket is gone
	// makes the fleet's buckets again.
	deleteBucket(t, ctx, js, workersBucket)
	worker, err := New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A heartbeat stored by the deleted bucket's stream on a node that
	// had not yet removed it (CI, a slow machine: the bucket then stayed
	// gone) is followed, as in a worker, by one that makes it again.
	natstest.Eventually(t, ctx, "heartbeat", func(ctx context.Context) error {
		if err := worker.Beat(ctx, jobs.WorkerInfo{ID: "w1", Cluster: "default"}); err != nil {
			return err
		}
		_, err := js.Stream(ctx, "KV_"+workersBucket)
		return err
	})
	wantReplicas(t, ctx, js, []string{"KV_" + drainBucket, "KV_" + claimsBucket}, 3)
	wantReplicas(t, ctx, js, []string{"KV_" + workersBucket}, 1)

	told, err := New(nc, WithReplicas(1))
	if err != nil {
		t.Fatal(err)
	}
	ensureAll(t, ctx, told)
	wantReplicas(t, ctx, js, names, 1)
}

// deleteBucket deletes the key-value bucket name, as an operator would,
// and returns once JetStream says its stream is gone. A delete whose
// answer timed out may still be applied later: it is asked again only
// once the one before has had 30 s to be applied.
func deleteBucket(t *testing.T, ctx context.Context, js jetstream.JetStream, name string) {
	t.Helper()
	gone := func() bool {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := js.Stream(sctx, "KV_"+name)
			cancel()
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return true
			}
			if ctx.Err() != nil {
				t.Fatalf("delete bucket %s: %v", name, err)
			}
		}
		return false
	}
	for {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := js.DeleteKeyValue(dctx, name)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Logf("delete bucket %s: %v; waiting for it to be applied", name, err)
		}
		if gone() {
			return
		}
	}
}

// ensureAll makes the streams and buckets a server makes at start, as
// often as it takes until ctx ends. As in a server, the context of the
// requests has no deadline, so that each request gets the JetStream
// client's own few seconds: a request to a group still electing its
// leader goes unanswered, and one carrying ctx's whole deadline would
// wait it all out.
func ensureAll(t *testing.T, ctx context.Context, q *Queue) {
	t.Helper()
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	defer context.AfterFunc(ctx, stop)()
	stager := NewStager(q.JetStream(), 0, q.Replicas())
	for {
		err := q.EnsureStreams(rctx)
		if err == nil {
			err = stager.EnsureBucket(rctx)
		}
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("streams: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// wantReplicas checks the replica count of each stream.
func wantReplicas(t *testing.T, ctx context.Context, js jetstream.JetStream, streams []string, want int) {
	t.Helper()
	for _, name := range streams {
		n, err := natstest.StreamReplicas(ctx, js, name)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("stream %s has %d replicas, want %d", name, n, want)
		}
	}
}
