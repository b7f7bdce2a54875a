package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// serverBucket holds the lease of the one gantry server of a NATS
// deployment, under leaseKey: the server that created the key, or
// updated it at the revision it read, writes the store; another one is
// refused while the holder renews it (server/lease.go). JetStream makes
// the create and the update compare-and-set, which the ping of the micro
// service ($SRV.PING.gantry) is not: two servers started at the same
// moment both found no one answering it.
const serverBucket = "gantry_server"

const leaseKey = "lease"

// ErrLeaseHeld is CreateLease's answer when the lease key holds a value:
// another server's, maybe stale (ReadLease).
var ErrLeaseHeld = errors.New("queue: the server lease is held")

// ErrLeaseChanged is the answer of UpdateLease and DeleteLease when the
// lease key is no longer at the revision given: another server took it
// over, or it was deleted.
var ErrLeaseChanged = errors.New("queue: the server lease changed")

// Lease is the lease key as ReadLease found it.
type Lease struct {
	Holder   []byte // as its holder wrote it
	Revision uint64
	// Age is how long before the read the holder last wrote it, by the
	// clock of the NATS server (the stream's leader) alone: the clocks of
	// the gantry hosts play no part.
	Age time.Duration
}

// CreateLease creates the lease key with holder if it holds no value
// (never written, or deleted by a server that stopped), making the bucket
// first where it does not exist (with the queue's replicas, as the other
// buckets; again where it was deleted since), and returns its revision.
// A key that holds a value is ErrLeaseHeld.
func (q *Queue) CreateLease(ctx context.Context, holder []byte) (uint64, error) {
	kv, err := q.leaseKV(ctx)
	if err != nil {
		return 0, err
	}
	var rev uint64
	create := func(kv jetstream.KeyValue) error {
		return whileInProcess(ctx, func() (err error) {
			rev, err = kv.Create(ctx, leaseKey, holder)
			return err
		})
	}
	err = create(kv)
	if q.leaseGone(ctx, err) {
		if kv, err = q.leaseKV(ctx); err != nil {
			return 0, err
		}
		err = create(kv)
	}
	// A key deleted before is created at the deletion's revision, and
	// one created meanwhile fails that as a wrong last sequence, which
	// kv.Create passes on as such.
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSeq(err) {
		return 0, ErrLeaseHeld
	}
	if err != nil {
		return 0, fmt.Errorf("create the server lease: %w", q.explain(err))
	}
	return rev, nil
}

// ReadLease returns the lease key's value, nil when it holds none (or
// its bucket is gone).
func (q *Queue) ReadLease(ctx context.Context) (*Lease, error) {
	kv, err := q.leaseKV(ctx)
	if err != nil {
		return nil, err
	}
	// The stream's leader answers (leaseKV), which on a cluster may not
	// be there yet for a bucket just made: "no responders" until then.
	var e jetstream.KeyValueEntry
	err = whileNoResponders(ctx, 12, func() (err error) {
		e, err = kv.Get(ctx, leaseKey)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) || q.leaseGone(ctx, err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the server lease: %w", q.explain(err))
	}
	// The stream's info carries the time of the server that answers
	// (its leader), as the entry's time is the leader's at its write.
	s, err := q.js.Stream(ctx, leaseStreamName)
	if err != nil {
		return nil, fmt.Errorf("read the server lease: %w", q.explain(err))
	}
	now := s.CachedInfo().TimeStamp
	if now.IsZero() { // a NATS server that does not say (before 2.10)
		now = time.Now()
	}
	return &Lease{Holder: e.Value(), Revision: e.Revision(), Age: max(now.Sub(e.Created()), 0)}, nil
}

// UpdateLease writes holder to the lease key if it is still at revision
// rev, and returns its new revision; at another revision (or deleted) it
// is ErrLeaseChanged, and any other error is NATS's.
//
// A bucket that no longer exists (an operator's nats kv del
// gantry_server, a JetStream store lost) is made again, and the lease
// written there if no server wrote it since: one that took it over
// meanwhile, even one that released it since, left its revision or its
// deletion in the new bucket, and that is ErrLeaseChanged.
func (q *Queue) UpdateLease(ctx context.Context, holder []byte, rev uint64) (uint64, error) {
	kv, err := q.leaseKV(ctx)
	if err != nil {
		return 0, err
	}
	var next uint64
	update := func(kv jetstream.KeyValue, rev uint64) error {
		return whileInProcess(ctx, func() (err error) {
			next, err = kv.Update(ctx, leaseKey, holder, rev)
			return err
		})
	}
	err = update(kv, rev)
	if q.leaseGone(ctx, err) {
		if kv, err = q.leaseKV(ctx); err != nil {
			return 0, err
		}
		err = update(kv, 0) // the key never written
	}
	if isWrongLastSeq(err) {
		return 0, ErrLeaseChanged
	}
	if err != nil {
		return 0, fmt.Errorf("renew the server lease: %w", q.explain(err))
	}
	return next, nil
}

// DeleteLease deletes the lease key if it is still at revision rev: the
// next server need not wait for it to be stale. At another revision, or
// with its bucket gone (the next use makes it again), it is
// ErrLeaseChanged.
func (q *Queue) DeleteLease(ctx context.Context, rev uint64) error {
	kv, err := q.leaseKV(ctx)
	if err != nil {
		return err
	}
	err = whileInProcess(ctx, func() error { return kv.Delete(ctx, leaseKey, jetstream.LastRevision(rev)) })
	if isWrongLastSeq(err) || q.leaseGone(ctx, err) {
		return ErrLeaseChanged
	}
	if err != nil {
		return fmt.Errorf("release the server lease: %w", q.explain(err))
	}
	return nil
}

// leaseGone reports whether err, from a request on the lease bucket, is
// the bucket no longer existing, and forgets its handle then, so that
// leaseKV makes it again. An error that may only look so (no responders:
// also a replicated stream between leaders) is asked of JetStream.
func (q *Queue) leaseGone(ctx context.Context, err error) bool {
	if !mayBeGone(err) {
		return false
	}
	if _, serr := q.js.Stream(ctx, leaseStreamName); !errors.Is(serr, jetstream.ErrStreamNotFound) {
		return false
	}
	q.mu.Lock()
	q.lease = nil
	q.mu.Unlock()
	return true
}

// leaseKV returns the lease bucket's handle, made (or updated to the
// queue's replicas) once, and again after leaseGone.
func (q *Queue) leaseKV(ctx context.Context) (jetstream.KeyValue, error) {
	q.mu.Lock()
	kv := q.lease
	q.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := ensureKVStream(ctx, q.js, serverBucket, // kvstream.go
		"gantry: the lease of the one gantry server (its host, pid and store)", 0, q.cfg.replicas)
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", serverBucket, q.explain(err))
	}
	q.mu.Lock()
	q.lease = kv
	q.mu.Unlock()
	return kv, nil
}

// leaseStreamName is the lease bucket's stream's, as nats.go names a
// key-value bucket's.
const leaseStreamName = "KV_" + serverBucket
