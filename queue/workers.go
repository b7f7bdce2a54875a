package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Buckets of the worker fleet.
const (
	// workersBucket holds one heartbeat per live worker; its entries expire
	// after PresenceTTL, so a dead worker disappears on its own.
	workersBucket = "gantry_workers"
	// drainBucket remembers which workers were told to drain. It outlives
	// their restarts, as an ECS DRAINING instance stays draining.
	drainBucket = "gantry_worker_drain"
	// claimsBucket records which worker runs which attempt of a run, so
	// that a redelivered job is recognised as a lost attempt.
	claimsBucket = "gantry_claims"
)

// PresenceTTL is how long a worker's heartbeat keeps it listed. Workers
// beat at a third of it.
const PresenceTTL = 15 * time.Second

// ErrNoWorker is returned for a worker that is not live.
var ErrNoWorker = errors.New("queue: no such worker")

// ErrClaimConflict is returned by PutClaim when the claim changed since it
// was read.
var ErrClaimConflict = errors.New("queue: claim changed concurrently")

// ensureWorkerBuckets makes the fleet's buckets, or brings them to the
// queue's replicas, and keeps a handle of the claims bucket, whose reads
// its stream's leader answers (openBucket).
func (q *Queue) ensureWorkerBuckets(ctx context.Context) error {
	for _, c := range []jetstream.KeyValueConfig{
		{Bucket: workersBucket, Description: "gantry: live workers (heartbeats)", TTL: PresenceTTL, Storage: jetstream.MemoryStorage},
		{Bucket: drainBucket, Description: "gantry: workers told to drain", Storage: jetstream.FileStorage},
	} {
		if _, err := ensureKeyValue(ctx, q.js, c, q.cfg.replicas); err != nil {
			return fmt.Errorf("kv %s: %w", c.Bucket, err)
		}
	}
	kv, err := ensureKVStream(ctx, q.js, claimsBucket, "gantry: which worker runs which attempt", 7*24*time.Hour, q.cfg.replicas)
	if err != nil {
		return fmt.Errorf("kv %s: %w", claimsBucket, err)
	}
	q.keep(claimsBucket, kv)
	return nil
}

// openBucket binds a handle to a fleet bucket. The claims bucket's reads
// its stream's leader answers (leaderReadKV): a worker reads a claim to
// write it at the revision read, and the server to record a stop in it,
// right after another wrote it; a follower's claim could be the one
// before, or none. The other buckets keep direct gets: a heartbeat read a
// few milliseconds old changes nothing, and all the fleet beats there.
func (q *Queue) openBucket(ctx context.Context, name string) (jetstream.KeyValue, error) {
	if name == claimsBucket {
		return leaderReadKV(ctx, q.js, name)
	}
	return q.js.KeyValue(ctx, name)
}

// keep keeps the handle of a bucket for its next uses (bucket).
func (q *Queue) keep(name string, kv jetstream.KeyValue) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.buckets == nil {
		q.buckets = map[string]jetstream.KeyValue{}
	}
	q.buckets[name] = kv
}

// bucket looks a bucket up, creating the fleet's buckets when it is missing
// (a worker may start before the server has). A lookup is a JetStream API
// request, too dear for every claim: the handle is kept, and forgotten
// when an operation finds the bucket gone (see gone).
func (q *Queue) bucket(ctx context.Context, name string) (jetstream.KeyValue, error) {
	q.mu.Lock()
	kv := q.buckets[name]
	q.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := q.openBucket(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if err := q.ensureWorkerBuckets(ctx); err != nil {
			return nil, err
		}
		kv, err = q.openBucket(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", name, err)
	}
	q.keep(name, kv)
	return kv, nil
}

// gone forgets the handle of a bucket when err says its stream no longer
// exists (deleted by hand, or a NATS server that lost its state), so that
// the next use looks it up, and creates it, again. It returns err.
func (q *Queue) gone(name string, err error) error {
	if mayBeGone(err) {
		q.mu.Lock()
		delete(q.buckets, name)
		q.mu.Unlock()
	}
	return err
}

// mayBeGone reports whether err, from a request on a bucket, may say that
// its stream no longer exists. No responders is also a stream that has no
// leader for a moment: ask JetStream to tell the two apart.
func mayBeGone(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, nats.ErrNoResponders)
}

// Beat stores a worker's heartbeat.
func (q *Queue) Beat(ctx context.Context, info jobs.WorkerInfo) error {
	kv, err := q.bucket(ctx, workersBucket)
	if err != nil {
		return err
	}
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, info.ID, data); q.gone(workersBucket, err) != nil {
		return fmt.Errorf("heartbeat of worker %s: %w", info.ID, err)
	}
	return nil
}

// Leave removes a worker that stops from the list at once.
func (q *Queue) Leave(ctx context.Context, id string) error {
	kv, err := q.bucket(ctx, workersBucket)
	if err != nil {
		return err
	}
	if err := kv.Delete(ctx, id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("worker %s leaves: %w", id, err)
	}
	return nil
}

// Workers returns the live workers, by cluster and id.
func (q *Queue) Workers(ctx context.Context) ([]jobs.WorkerInfo, error) {
	kv, err := q.bucket(ctx, workersBucket)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	defer w.Stop()
	out := []jobs.WorkerInfo{}
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // the end of what is stored now
				sort.Slice(out, func(i, j int) bool {
					if out[i].Cluster != out[j].Cluster {
						return out[i].Cluster < out[j].Cluster
					}
					return out[i].ID < out[j].ID
				})
				return out, nil
			}
			var info jobs.WorkerInfo
			if json.Unmarshal(e.Value(), &info) == nil && info.ID != "" {
				out = append(out, info)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("list workers: %w", ctx.Err())
		}
	}
}

// Worker returns one live worker, or an error wrapping ErrNoWorker.
func (q *Queue) Worker(ctx context.Context, id string) (*jobs.WorkerInfo, error) {
	kv, err := q.bucket(ctx, workersBucket)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("worker %s: %w", id, ErrNoWorker)
	}
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", id, err)
	}
	var info jobs.WorkerInfo
	if err := json.Unmarshal(e.Value(), &info); err != nil {
		return nil, fmt.Errorf("worker %s: %w", id, err)
	}
	return &info, nil
}

// SetDrain tells a worker to drain (take nothing new) or to take work
// again.
func (q *Queue) SetDrain(ctx context.Context, id string, drain bool) error {
	kv, err := q.bucket(ctx, drainBucket)
	if err != nil {
		return err
	}
	if drain {
		_, err = kv.Put(ctx, id, []byte(jobs.WorkerDraining))
	} else {
		err = kv.Delete(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("drain worker %s: %w", id, err)
	}
	return nil
}

// WatchDrain calls fn with the worker's drain setting now and at every
// change, until ctx is done. The stored setting is given to fn before
// WatchDrain returns: a worker drained while it was not live (gantry
// workers drain of a host down for maintenance) takes nothing at its
// start.
func (q *Queue) WatchDrain(ctx context.Context, id string, fn func(drain bool)) error {
	kv, err := q.bucket(ctx, drainBucket)
	if err != nil {
		return err
	}
	w, err := kv.Watch(ctx, id)
	if err != nil {
		return fmt.Errorf("watch drain of worker %s: %w", id, err)
	}
	for stored := true; stored; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch drain of worker %s: watcher closed", id)
			}
			if e == nil { // the end of what is stored now
				stored = false
				continue
			}
			fn(e.Operation() == jetstream.KeyValuePut && string(e.Value()) == string(jobs.WorkerDraining))
		case <-ctx.Done():
			w.Stop()
			return fmt.Errorf("watch drain of worker %s: %w", id, ctx.Err())
		}
	}
	go func() {
		defer w.Stop()
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				fn(e.Operation() == jetstream.KeyValuePut && string(e.Value()) == string(jobs.WorkerDraining))
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}

// Claim returns the claim stored for a run and its revision; nil and 0
// when there is none.
func (q *Queue) Claim(ctx context.Context, runID string) ([]byte, uint64, error) {
	kv, err := q.bucket(ctx, claimsBucket)
	if err != nil {
		return nil, 0, err
	}
	e, err := kv.Get(ctx, runID)
	q.gone(claimsBucket, err)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("claim of run %s: %w", runID, err)
	}
	return e.Value(), e.Revision(), nil
}

// PutClaim stores a run's claim if it is still at revision rev (0: if
// there is none) and returns its new revision; otherwise it returns
// ErrClaimConflict.
func (q *Queue) PutClaim(ctx context.Context, runID string, data []byte, rev uint64) (uint64, error) {
	kv, err := q.bucket(ctx, claimsBucket)
	if err != nil {
		return 0, err
	}
	// kv.Create and kv.Update, but for the acknowledgement's decoding
	// (putKey); a first claim whose key was claimed and deleted before
	// takes kv.Create's way, which reads the deleted key's revision. Each
	// is tried again while an R3 bucket is still applying a write of the
	// key (whileInProcess), which it would otherwise refuse as though
	// another worker had written the claim: no extra request where
	// nothing refuses, as on R1.
	var newRev uint64
	err = whileInProcess(ctx, func() (err error) {
		newRev, err = q.putKey(ctx, claimsBucket, runID, data, rev)
		return err
	})
	if rev == 0 && isWrongLastSeq(err) {
		err = whileInProcess(ctx, func() (err error) {
			newRev, err = kv.Create(ctx, runID, data)
			return err
		})
	}
	q.gone(claimsBucket, err)
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSeq(err) {
		return 0, fmt.Errorf("claim of run %s: %w", runID, ErrClaimConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("claim of run %s: %w", runID, err)
	}
	return newRev, nil
}

// isWrongLastSeq reports whether err is a stream's refusal of a write
// that expected another last revision of its key (10071; 10164 from
// replicated streams).
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
