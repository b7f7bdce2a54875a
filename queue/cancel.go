package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// cancelBucket remembers canceled runs for workers that take their job
// later, so that a job canceled while queued never starts.
const cancelBucket = "gantry_canceled"

// ensureCancelBucket makes the bucket, or brings it to the queue's
// replicas, and keeps a handle whose reads its stream's leader answers
// (cancelKV).
func (q *Queue) ensureCancelBucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := ensureKVStream(ctx, q.js, cancelBucket, "gantry: runs canceled by users", 7*24*time.Hour, q.cfg.replicas)
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", cancelBucket, err)
	}
	q.mu.Lock()
	q.kv = kv
	q.mu.Unlock()
	return kv, nil
}

// MarkCanceled records that runID must not start, and tells the worker that
// may be running it to stop. Before it tells the worker, it calls
// beforeTell (if not nil), which the server uses to record the stop in the
// run's claim (worker.CancelClaim): a worker that claims the run first
// then learns of the stop from the message, and one that claims it after
// from the claim, without asking the bucket for every run.
func (q *Queue) MarkCanceled(ctx context.Context, runID, reason string, beforeTell func(context.Context) error) error {
	kv, err := q.cancelKV(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, runID, []byte(reason)); err != nil {
		return fmt.Errorf("mark %s canceled: %w", runID, err)
	}
	if beforeTell != nil {
		if err := beforeTell(ctx); err != nil {
			return fmt.Errorf("mark %s canceled: %w", runID, err)
		}
	}
	return q.PublishCancel(runID, reason)
}

// Canceled reports whether runID was canceled, and why.
func (q *Queue) Canceled(ctx context.Context, runID string) (bool, string, error) {
	kv, err := q.cancelKV(ctx)
	if err != nil {
		return false, "", err
	}
	e, err := kv.Get(ctx, runID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, "", nil
	}
	if mayBeGone(err) {
		// Perhaps a handle that asks for direct gets, bound before the
		// server turned them off on a bucket an older gantry made
		// (cancelKV): the next read binds again.
		q.mu.Lock()
		q.kv = nil
		q.mu.Unlock()
	}
	if err != nil {
		return false, "", err
	}
	return true, string(e.Value()), nil
}

// cancelKV returns the bucket's handle, looked up once. Its reads the
// stream's leader answers (leaderReadKV): a worker that takes over a lost
// worker's run asks whether it was stopped meanwhile, and a follower of
// an R3 bucket could answer not yet, right after the stop was stored, and
// the run started.
func (q *Queue) cancelKV(ctx context.Context) (jetstream.KeyValue, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.kv != nil {
		return q.kv, nil
	}
	kv, err := leaderReadKV(ctx, q.js, cancelBucket)
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", cancelBucket, err)
	}
	q.kv = kv
	return kv, nil
}
