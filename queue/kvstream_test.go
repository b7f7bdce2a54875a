package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// olderBuckets are the claims and cancel buckets as gantry made them
// before it made their streams itself (kvStreamConfig): by nats.go's
// CreateKeyValue, which turns direct gets on, and on a replicated bucket
// before the server turned them off again.
func olderBuckets(replicas int) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: claimsBucket, Description: "gantry: which worker runs which attempt", TTL: 7 * 24 * time.Hour, Storage: jetstream.FileStorage, Replicas: replicas},
		{Bucket: cancelBucket, Description: "gantry: runs canceled by users", TTL: 7 * 24 * time.Hour, Storage: jetstream.FileStorage, Replicas: replicas},
	}
}

// makeOlderBuckets makes olderBuckets, each with the key r1: a claim of
// attempt 1, and a stop.
func makeOlderBuckets(t *testing.T, ctx context.Context, js jetstream.JetStream, replicas int) {
	t.Helper()
	for _, c := range olderBuckets(replicas) {
		natstest.Eventually(t, ctx, "older bucket "+c.Bucket, func(ctx context.Context) error {
			kv, err := js.CreateKeyValue(ctx, c)
			if err != nil {
				return err
			}
			value := `{"attempt":1}`
			if c.Bucket == cancelBucket {
				value = "stopped"
			}
			_, err = kv.Put(ctx, "r1", []byte(value))
			return err
		})
	}
}

// streamUpdates counts the updates of the claims and cancel buckets'
// streams told on nc since it was made (watch).
type streamUpdates struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	subs map[string]*nats.Subscription
}

func watchUpdates(t *testing.T, nc *nats.Conn) *streamUpdates {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	w := &streamUpdates{nc: nc, js: js, subs: map[string]*nats.Subscription{}}
	for _, b := range []string{claimsBucket, cancelBucket} {
		sub, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.KV_" + b)
		if err != nil {
			t.Fatal(err)
		}
		w.subs["KV_"+b] = sub
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// take returns how many updates each stream had since the last take.
func (w *streamUpdates) take(t *testing.T, ctx context.Context) map[string]int {
	t.Helper()
	got := map[string]int{}
	for name, sub := range w.subs {
		// An update made before would be told before this request's
		// answer, which the stream's leader sends after it.
		if _, err := w.js.Stream(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := w.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := sub.NextMsg(0); err != nil {
				break
			}
			got[name]++
		}
	}
	return got
}

// wantStreams fails the test unless the claims and cancel buckets'
// streams have replicas and direct gets as asked.
func wantStreams(t *testing.T, ctx context.Context, js jetstream.JetStream, replicas int, direct bool) {
	t.Helper()
	for _, b := range []string{claimsBucket, cancelBucket} {
		s, err := js.Stream(ctx, "KV_"+b)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := s.CachedInfo().Config; cfg.AllowDirect != direct || cfg.Replicas != replicas {
			t.Errorf("KV_%s: allow direct %v, replicas %d; want %v, %d", b, cfg.AllowDirect, cfg.Replicas, direct, replicas)
		}
	}
}

// wantR1 fails the test unless q reads the key r1 of makeOlderBuckets,
// and writes after it.
func wantR1(t *testing.T, ctx context.Context, q *Queue) {
	t.Helper()
	data, rev, err := q.Claim(ctx, "r1")
	if err != nil || rev == 0 || string(data) != `{"attempt":1}` {
		t.Fatalf("claim r1: %s at %d, %v; want attempt 1", data, rev, err)
	}
	if _, err := q.PutClaim(ctx, "r1", []byte(`{"attempt":2}`), rev); err != nil {
		t.Fatalf("claim r1 at %d: %v", rev, err)
	}
	if ok, reason, err := q.Canceled(ctx, "r1"); err != nil || !ok || reason != "stopped" {
		t.Fatalf("canceled r1: %v, %q, %v; want stopped", ok, reason, err)
	}
	if err := q.MarkCanceled(ctx, "r2", "stopped", nil); err != nil {
		t.Fatal(err)
	}
}

// TestClaimsAndCancelStartsLeaveDirectGetsOff: on a cluster, the first
// server start turns direct gets off, once, on the R3 claims and cancel
// buckets an older gantry made with them on, and a second start does not
// touch their streams. nats.go's CreateKeyValue turned direct gets on at
// each start, and the starting server turned them off again (two updates
// a bucket): a handle a worker bound meanwhile read followers, which lag
// behind the leader, until a read failed. nats kv (nats.go's older API)
// still reads the buckets.
func TestClaimsAndCancelStartsLeaveDirectGetsOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := strings.Join(natstest.Cluster(t), ",")
	dial := func(t *testing.T) *Queue { return r3Queue(t, ctx, url) }
	start := func(t *testing.T, q *Queue) {
		t.Helper()
		natstest.Eventually(t, ctx, "streams", q.EnsureStreams)
	}
	older := dial(t)
	makeOlderBuckets(t, ctx, older.js, 3)
	wantStreams(t, ctx, older.js, 3, true)
	updates := watchUpdates(t, older.nc)

	first := dial(t)
	start(t, first)
	if got := updates.take(t, ctx); got["KV_"+claimsBucket] != 1 || got["KV_"+cancelBucket] != 1 {
		t.Errorf("the first start updated the buckets' streams %v times; want once each", got)
	}
	wantStreams(t, ctx, first.js, 3, false)
	wantR1(t, ctx, first)

	second := dial(t)
	start(t, second)
	if got := updates.take(t, ctx); len(got) != 0 {
		t.Errorf("a second start updated the buckets' streams %v times; want none", got)
	}
	wantStreams(t, ctx, second.js, 3, false)
	if data, _, err := second.Claim(ctx, "r1"); err != nil || string(data) != `{"attempt":2}` {
		t.Fatalf("the second server's claim r1: %s, %v; want attempt 2", data, err)
	}

	legacy, err := second.nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{claimsBucket, cancelBucket} {
		kv, err := legacy.KeyValue(b)
		if err != nil {
			t.Fatalf("nats kv of %s: %v", b, err)
		}
		if _, err := kv.Get("r1"); err != nil {
			t.Fatalf("nats kv get %s r1: %v", b, err)
		}
	}
}

// TestR1ClaimsAndCancelBucketsOfAnOlderGantry: the claims and cancel
// buckets an older gantry made, R1 as by default, are as gantry makes them
// (direct gets on, as their one replica is their leader): a start leaves
// their streams alone, and reads and writes what they hold.
func TestR1ClaimsAndCancelBucketsOfAnOlderGantry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc := newConn(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	makeOlderBuckets(t, ctx, js, 1)
	updates := watchUpdates(t, nc)
	q, err := New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	if got := updates.take(t, ctx); len(got) != 0 {
		t.Errorf("a start updated the older buckets' streams %v times; want none", got)
	}
	wantStreams(t, ctx, js, 1, true)
	wantR1(t, ctx, q)
}
