package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue/natstest"
)

// r3Queue is a queue of R3 streams and buckets on the cluster at url, on
// a connection of its own; nothing is made yet.
func r3Queue(t *testing.T, ctx context.Context, url string) *Queue {
	t.Helper()
	nc, err := Dial(ctx, ConnOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := New(nc, WithReplicas(3))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// clusterQueue is a queue of R3 streams and buckets on a 3-node cluster,
// made once the cluster has elected its meta leader.
func clusterQueue(t *testing.T, ctx context.Context) *Queue {
	t.Helper()
	q := r3Queue(t, ctx, strings.Join(natstest.Cluster(t), ","))
	for {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := q.EnsureStreams(tctx)
		cancel()
		if err == nil {
			return q
		}
		if ctx.Err() != nil {
			t.Fatalf("streams: %v", err)
		}
	}
}

// TestClaimsReadTheirWritesOnACluster: on a cluster's R3 claims bucket,
// each step of a claim sees the one before it, however soon after it
// comes, and a real conflict is still one. A follower answered the
// direct get of Claim with what it had applied, which lags behind a
// write the leader acknowledged (a claim just stored was not there, or
// at its revision before), and an update right after a write of the
// key was refused with 10164, the first not yet applied, which PutClaim
// took for ErrClaimConflict though nothing else had written the claim.
func TestClaimsReadTheirWritesOnACluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	q := clusterQueue(t, ctx)
	for round := range 300 {
		id := fmt.Sprintf("r%d", round)
		rev, err := q.PutClaim(ctx, id, []byte(`{"attempt":1}`), 0)
		if err != nil {
			t.Fatalf("round %d: first claim: %v", round, err)
		}
		if data, got, err := q.Claim(ctx, id); err != nil || got != rev || string(data) != `{"attempt":1}` {
			t.Fatalf("round %d: read right after the first claim at %d: %s at %d, %v", round, rev, data, got, err)
		}
		next, err := q.PutClaim(ctx, id, []byte(`{"attempt":2}`), rev)
		if err != nil {
			t.Fatalf("round %d: update right after the first claim at %d: %v", round, rev, err)
		}
		if data, got, err := q.Claim(ctx, id); err != nil || got != next || string(data) != `{"attempt":2}` {
			t.Fatalf("round %d: read right after the update to %d: %s at %d, %v", round, next, data, got, err)
		}
		if _, err := q.PutClaim(ctx, id, []byte(`{"attempt":1,"worker":"w2"}`), 0); !errors.Is(err, ErrClaimConflict) {
			t.Fatalf("round %d: second first claim: %v; want ErrClaimConflict", round, err)
		}
		if _, err := q.PutClaim(ctx, id, []byte(`{"attempt":3}`), rev); !errors.Is(err, ErrClaimConflict) {
			t.Fatalf("round %d: claim at the stale revision %d: %v; want ErrClaimConflict", round, rev, err)
		}
		done, err := q.PutClaim(ctx, id, []byte(`{"attempt":2,"done":true}`), next)
		if err != nil {
			t.Fatalf("round %d: update at %d after two refused: %v", round, next, err)
		}
		if data, got, err := q.Claim(ctx, id); err != nil || got != done || string(data) != `{"attempt":2,"done":true}` {
			t.Fatalf("round %d: read right after the update to %d: %s at %d, %v", round, done, data, got, err)
		}
	}
}

// TestCanceledReadsItsWriteOnACluster: on a cluster's R3 cancel bucket,
// a run marked canceled is canceled at once for whoever asks. A worker
// that takes over a lost worker's run asks (Worker.handle), and a
// follower answered what it had applied: not yet canceled, and the run
// ran.
func TestCanceledReadsItsWriteOnACluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	q := clusterQueue(t, ctx)
	for round := range 2000 {
		id := fmt.Sprintf("r%d", round)
		if err := q.MarkCanceled(ctx, id, "stopped", nil); err != nil {
			t.Fatalf("round %d: mark canceled: %v", round, err)
		}
		if ok, reason, err := q.Canceled(ctx, id); err != nil || !ok || reason != "stopped" {
			t.Fatalf("round %d: read right after the mark: %v, %q, %v; want canceled, stopped", round, ok, reason, err)
		}
	}
}
