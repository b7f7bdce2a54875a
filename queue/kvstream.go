package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// kvStreamConfig is the configuration of the stream of a key-value bucket
// whose reads must see the writes acknowledged before them: the one
// nats.go's CreateKeyValue gives a bucket of one value a key in file
// storage (so that nats kv reads it, and a bucket it made keeps its
// configuration), but with direct gets only on an R1 bucket, as on the
// stage data bucket's (dataStreamConfig). Any replica answers a direct
// get, and a follower applies a write only after the leader acknowledged
// it: read there, a lease just released was still held, a claim just
// written was the one before, and a run just stopped was not; a bucket
// just made answered them with no responders until its replicas caught
// up. A handle reads as the stream allowed when it was bound
// (js.KeyValue), and CreateKeyValue turns direct gets on on a bucket it
// finds: made so at each server's start and turned off after it, a handle
// another server or a worker bound at that moment read followers for as
// long as it lived. An R1 bucket keeps them: its one replica is its
// leader. ttl is the bucket's (0 for none).
func kvStreamConfig(bucket, description string, ttl time.Duration, replicas int) jetstream.StreamConfig {
	// CreateKeyValue's window: 2 minutes, or the TTL if shorter.
	dup := 2 * time.Minute
	if ttl > 0 && ttl < dup {
		dup = ttl
	}
	return jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Description:       description,
		Subjects:          []string{"$KV." + bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            ttl,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        dup,
		Discard:           jetstream.DiscardNew,
		AllowDirect:       replicas <= 1,
	}
}

// ensureKVStream makes a bucket's stream with kvStreamConfig, with the
// replicas replicasFor gives it for want, and returns a handle bound
// after, whose reads the stream's leader answers on a replicated bucket.
// A stream as asked is left alone (ensure); one that differs, as a bucket
// that an older gantry made with direct gets on, is updated, once.
func ensureKVStream(ctx context.Context, js jetstream.JetStream, bucket, description string, ttl time.Duration, want int) (jetstream.KeyValue, error) {
	n, err := replicasFor(ctx, js, "KV_"+bucket, want) // queue.go
	if err != nil {
		return nil, err
	}
	cfg := kvStreamConfig(bucket, description, ttl, n)
	if _, err := ensure(ctx, cfg, jetstream.ErrStreamNameAlreadyInUse, js.CreateStream, js.CreateOrUpdateStream); err != nil {
		return nil, err
	}
	// On a cluster, a stream another server's create has just made
	// (ours then finds it) is not found for a moment, until its leader
	// has it.
	var kv jetstream.KeyValue
	err = retryWhile(ctx, func(err error) bool { return errors.Is(err, jetstream.ErrBucketNotFound) },
		12, jetstream.DefaultPubRetryWait, func() (err error) {
			kv, err = js.KeyValue(ctx, bucket)
			return err
		})
	return kv, err
}

// leaderReadKV binds a handle to a bucket whose stream the server made
// with kvStreamConfig, and whose reads must be its stream's leader's (the
// claims and cancel buckets, which a worker binds without making them):
// it first turns direct gets off on a replicated one that has them on,
// as one an older gantry server made, or one an operator scaled up by
// hand (nats stream edit --replicas 3), until the server's next start
// (ensureKVStream) does. The handle, not the stream, decides how it
// reads. An R1 bucket keeps direct gets: its one replica is its leader.
func leaderReadKV(ctx context.Context, js jetstream.JetStream, bucket string) (jetstream.KeyValue, error) {
	s, err := js.Stream(ctx, "KV_"+bucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, jetstream.ErrBucketNotFound // as js.KeyValue says it
	}
	if err != nil {
		return nil, err
	}
	if cfg := s.CachedInfo().Config; cfg.Replicas > 1 && cfg.AllowDirect {
		cfg.AllowDirect = false
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("turn direct gets off: %w", err)
		}
	}
	return js.KeyValue(ctx, bucket)
}

// whileInProcess calls do, and again up to inProcessTries times,
// inProcessWait apart, while a replicated stream answers it with 10164
// ("wrong last sequence", without one): a write to the key is still being
// applied, so the stream cannot tell whether the revision given is the
// key's. The leader acknowledges a write before it has applied it: a
// server's update of the lease right after its create, or its create
// right after its release, was refused so (ErrLeaseChanged,
// ErrLeaseHeld) though nothing else had written it, and a worker's claim
// update so (ErrClaimConflict). A revision that is
// not the key's is refused with 10071, which names the key's. It returns
// do's last error, also when ctx ends the wait.
func whileInProcess(ctx context.Context, do func() error) error {
	return retryWhile(ctx, isInProcess, inProcessTries, inProcessWait, do)
}

// inProcessWait and inProcessTries bound whileInProcess: an apply takes
// well under a millisecond on an idle cluster, and tens of them under
// -race on a loaded machine.
const (
	inProcessWait  = 20 * time.Millisecond
	inProcessTries = 100
)

func isInProcess(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
