package queue

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/gantry-dev/gantry/queue/natstest"
)

// The server lease is compare-and-set at every step, on one NATS server
// and on a cluster's R3 bucket, whose conflicts JetStream reports with
// another code (10164): a second create is ErrLeaseHeld, also after a
// release (a create at the deletion's revision), and an update or a
// delete at a revision gone is ErrLeaseChanged.
func TestLeaseRevisions(t *testing.T) {
	for _, c := range []struct {
		name string
		q    func(t *testing.T) *Queue
	}{
		{"R1", newQueue},
		{"R3", func(t *testing.T) *Queue {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return clusterQueue(t, ctx)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := c.q(t)
			ctx := context.Background()
			if l, err := q.ReadLease(ctx); err != nil || l != nil {
				t.Fatalf("a new bucket's lease: %+v, %v; want none", l, err)
			}
			for round := range 2 { // the second after a release
				rev, err := q.CreateLease(ctx, []byte("a"))
				if err != nil {
					t.Fatalf("round %d: create: %v", round, err)
				}
				if _, err := q.CreateLease(ctx, []byte("b")); !errors.Is(err, ErrLeaseHeld) {
					t.Fatalf("round %d: second create: %v, want ErrLeaseHeld", round, err)
				}
				l, err := q.ReadLease(ctx)
				if err != nil || l == nil || string(l.Holder) != "a" || l.Revision != rev || l.Age < 0 || l.Age > time.Minute {
					t.Fatalf("round %d: read: %+v, %v; want a at %d, just written", round, l, err, rev)
				}
				next, err := q.UpdateLease(ctx, []byte("a2"), rev)
				if err != nil || next <= rev {
					t.Fatalf("round %d: update at its revision: %d, %v", round, next, err)
				}
				if _, err := q.UpdateLease(ctx, []byte("c"), rev); !errors.Is(err, ErrLeaseChanged) {
					t.Fatalf("round %d: update at a revision gone: %v, want ErrLeaseChanged", round, err)
				}
				if err := q.DeleteLease(ctx, rev); !errors.Is(err, ErrLeaseChanged) {
					t.Fatalf("round %d: delete at a revision gone: %v, want ErrLeaseChanged", round, err)
				}
				if err := q.DeleteLease(ctx, next); err != nil {
					t.Fatalf("round %d: delete: %v", round, err)
				}
				if l, err := q.ReadLease(ctx); err != nil || l != nil {
					t.Fatalf("round %d: the lease released: %+v, %v; want none", round, l, err)
				}
				if _, err := q.UpdateLease(ctx, []byte("d"), next); !errors.Is(err, ErrLeaseChanged) {
					t.Fatalf("round %d: update of a lease released: %v, want ErrLeaseChanged", round, err)
				}
			}
		})
	}
}

// A lease bucket deleted under a server that holds the lease (an
// operator's nats kv del gantry_server, a JetStream store lost) is made
// again at its next renewal, which writes the lease there where no other
// server wrote it meanwhile. The handle was kept for good: every renewal
// failed with no responders until the server gave its lease up.
func TestLeaseBucketDeleted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc := newConn(t)
	q, err := New(nc)
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(nc) // another server's queue, on the same NATS
	if err != nil {
		t.Fatal(err)
	}
	deleteBucket := func(t *testing.T) {
		t.Helper()
		if err := q.js.DeleteKeyValue(ctx, serverBucket); err != nil {
			t.Fatal(err)
		}
	}
	take := func(t *testing.T) uint64 {
		t.Helper()
		l, err := q.ReadLease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if l != nil {
			if err := q.DeleteLease(ctx, l.Revision); err != nil {
				t.Fatal(err)
			}
		}
		rev, err := q.CreateLease(ctx, []byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}

	t.Run("renewed", func(t *testing.T) {
		rev := take(t)
		deleteBucket(t)
		next, err := q.UpdateLease(ctx, []byte("a2"), rev)
		if err != nil {
			t.Fatalf("renewal after the bucket was deleted: %v", err)
		}
		l, err := other.ReadLease(ctx)
		if err != nil || l == nil || string(l.Holder) != "a2" || l.Revision != next {
			t.Fatalf("the lease renewed in the bucket made again: %+v, %v; want a2 at %d", l, err, next)
		}
		if next, err = q.UpdateLease(ctx, []byte("a3"), next); err != nil {
			t.Fatalf("the renewal after: %v", err)
		}
		if err := q.DeleteLease(ctx, next); err != nil {
			t.Fatalf("release: %v", err)
		}
	})
	t.Run("taken over meanwhile", func(t *testing.T) {
		rev := take(t)
		deleteBucket(t)
		if _, err := other.CreateLease(ctx, []byte("b")); err != nil {
			t.Fatalf("another server's create in the bucket gone: %v", err)
		}
		if _, err := q.UpdateLease(ctx, []byte("a2"), rev); !errors.Is(err, ErrLeaseChanged) {
			t.Fatalf("renewal of a lease taken over in the new bucket: %v, want ErrLeaseChanged", err)
		}
		if l, err := q.ReadLease(ctx); err != nil || l == nil || string(l.Holder) != "b" {
			t.Fatalf("read: %+v, %v; want b's", l, err)
		}
	})
	t.Run("taken over and released meanwhile", func(t *testing.T) {
		l, err := q.ReadLease(ctx)
		if err != nil || l == nil {
			t.Fatalf("b's lease: %+v, %v", l, err)
		}
		if err := q.DeleteLease(ctx, l.Revision); err != nil {
			t.Fatal(err)
		}
		rev := take(t)
		deleteBucket(t)
		brev, err := other.CreateLease(ctx, []byte("b"))
		if err != nil {
			t.Fatal(err)
		}
		if err := other.DeleteLease(ctx, brev); err != nil {
			t.Fatal(err)
		}
		if _, err := q.UpdateLease(ctx, []byte("a2"), rev); !errors.Is(err, ErrLeaseChanged) {
			t.Fatalf("renewal of a lease another server held and released in the new bucket: %v, want ErrLeaseChanged", err)
		}
	})
	t.Run("released", func(t *testing.T) {
		rev := take(t)
		deleteBucket(t)
		if err := q.DeleteLease(ctx, rev); !errors.Is(err, ErrLeaseChanged) {
			t.Fatalf("release with the bucket gone: %v, want ErrLeaseChanged", err)
		}
		if l, err := q.ReadLease(ctx); err != nil || l != nil {
			t.Fatalf("read after: %+v, %v; want none", l, err)
		}
		if _, err := q.CreateLease(ctx, []byte("a")); err != nil {
			t.Fatalf("create after: %v", err)
		}
	})
	t.Run("created and read", func(t *testing.T) {
		deleteBucket(t)
		if _, err := q.CreateLease(ctx, []byte("a")); err != nil {
			t.Fatalf("create with the bucket gone: %v", err)
		}
		deleteBucket(t)
		if l, err := q.ReadLease(ctx); err != nil || l != nil {
			t.Fatalf("read with the bucket gone: %+v, %v; want none", l, err)
		}
	})
}

// A renewal or a release that NATS cannot answer says why as the lease's
// create and read do: here a NATS server restarted without JetStream on
// the same port, where they said only "no responders available".
func TestLeaseErrorsExplained(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := natstest.Start(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	port := ns.Addr().(*net.TCPAddr).Port
	q := dialQueue(t, ctx, ns.ClientURL())
	rev, err := q.CreateLease(ctx, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	// Reconnected, not still taken for connected to the server shut
	// down: a request written to its dead socket is lost, and waited for
	// until ctx ends.
	reconnects := q.nc.Stats().Reconnects
	ns.Shutdown()
	ns.WaitForShutdown()
	natstest.Start(t, &natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	for q.nc.Stats().Reconnects == reconnects || !q.nc.IsConnected() {
		select {
		case <-ctx.Done():
			t.Fatal("no reconnection to the NATS server without JetStream")
		case <-time.After(50 * time.Millisecond):
		}
	}
	want := "has no JetStream: start nats-server with JetStream enabled"
	var noJS *NoJetStreamError
	if _, err := q.UpdateLease(ctx, []byte("a2"), rev); !errors.As(err, &noJS) || !strings.Contains(err.Error(), want) {
		t.Errorf("UpdateLease = %v, want a *NoJetStreamError saying %q", err, want)
	}
	if err := q.DeleteLease(ctx, rev); !errors.As(err, &noJS) || !strings.Contains(err.Error(), want) {
		t.Errorf("DeleteLease = %v, want a *NoJetStreamError saying %q", err, want)
	}
}

// TestLeaseReadsItsWritesOnACluster: on a cluster's R3 bucket, each step
// of the lease sees the one before it, however soon after it comes. A
// follower answered the direct gets of ReadLease and of kv.Create with
// what it had applied, which lags behind a write the leader acknowledged
// (a lease just created was not there, one just released was held), and
// a write right after another of the key was refused with 10164, the
// first not yet applied (ErrLeaseChanged, ErrLeaseHeld): each came once
// in about 200 rounds, and TestLeaseRevisions/R3 met them now and then.
func TestLeaseReadsItsWritesOnACluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	q := clusterQueue(t, ctx)
	if l, err := q.ReadLease(ctx); err != nil || l != nil {
		t.Fatalf("a new bucket's lease: %+v, %v; want none", l, err)
	}
	for round := range 300 {
		rev, err := q.CreateLease(ctx, []byte("a"))
		if err != nil {
			t.Fatalf("round %d: create right after a release: %v", round, err)
		}
		if l, err := q.ReadLease(ctx); err != nil || l == nil || l.Revision != rev {
			t.Fatalf("round %d: read right after the create at %d: %+v, %v", round, rev, l, err)
		}
		next, err := q.UpdateLease(ctx, []byte("a2"), rev)
		if err != nil {
			t.Fatalf("round %d: update right after the create at %d: %v", round, rev, err)
		}
		if err := q.DeleteLease(ctx, next); err != nil {
			t.Fatalf("round %d: release right after the update to %d: %v", round, next, err)
		}
		if l, err := q.ReadLease(ctx); err != nil || l != nil {
			t.Fatalf("round %d: read right after the release: %+v, %v; want none", round, l, err)
		}
	}
}

// TestLeaseStartLeavesDirectGetsOff: a server starting beside another
// that holds the lease on a cluster's R3 bucket does not touch the
// bucket's stream. nats.go's CreateKeyValue turned direct gets on at each
// start, and the starting server turned them off again: a handle another
// server bound meanwhile read followers, which lag behind the leader, for
// as long as it lived. Two updates of the stream came of each start.
func TestLeaseStartLeavesDirectGetsOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := strings.Join(natstest.Cluster(t), ",")
	dial := func(t *testing.T) *Queue { return r3Queue(t, ctx, url) }
	holder := dial(t)
	if _, err := holder.CreateLease(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	watch, err := holder.nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED." + leaseStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	other := dial(t)
	if l, err := other.ReadLease(ctx); err != nil || l == nil || string(l.Holder) != "a" {
		t.Fatalf("the starting server's read: %+v, %v; want a's lease", l, err)
	}
	// An update made before the read would be told before this
	// request's answer, which the stream's leader sends after it.
	if _, err := holder.js.Stream(ctx, leaseStreamName); err != nil {
		t.Fatal(err)
	}
	if err := holder.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, err := watch.Pending(); err != nil || n != 0 {
		t.Errorf("the lease bucket's stream was updated %d times by a server's start (%v), want none", n, err)
	}
	s, err := holder.js.Stream(ctx, leaseStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.CachedInfo().Config; cfg.AllowDirect || cfg.Replicas != 3 {
		t.Errorf("lease bucket: allow direct %v, replicas %d; want false, 3", cfg.AllowDirect, cfg.Replicas)
	}
}
