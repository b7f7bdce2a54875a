package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishSync publishes m to JetStream and waits for the stream's
// acknowledgement, as jetstream.PublishMsg does: it asks again, up to
// twice and 250 ms apart, while no stream answers (a leader being
// elected), and returns the same errors. It decodes the acknowledgement
// with go-json: nats.go's encoding/json decoding of it was about 2.5% of
// the control plane's CPU, for a job, a claim and a share of a report a
// run (gantry bench --cpuprofile, 2026-12-06). A ctx without a deadline
// gets the JetStream context's default timeout, as PublishMsg gives it:
// an answer that never comes (lost as a connection drops) must not hold
// an advance or a worker's claim for ever.
func (q *Queue) publishSync(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.js.Options().DefaultTimeout)
		defer cancel()
	}
	var resp *nats.Msg
	err := whileNoResponders(ctx, jetstream.DefaultPubRetryAttempts, func() (err error) {
		resp, err = q.nc.RequestMsgWithContext(ctx, m)
		return err
	})
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, jetstream.ErrNoStreamResponse
	}
	if err != nil {
		return nil, err
	}
	return decodePubAck(resp.Data)
}

// whileNoResponders calls do, and again up to retries times,
// jetstream.DefaultPubRetryWait apart, while it returns NATS's "no
// responders": a stream whose leader is being elected, or one just made
// on a cluster that does not answer yet. It returns do's last error, also
// when ctx ends the wait.
func whileNoResponders(ctx context.Context, retries int, do func() error) error {
	return retryWhile(ctx, func(err error) bool { return errors.Is(err, nats.ErrNoResponders) },
		retries, jetstream.DefaultPubRetryWait, do)
}

// retryWhile calls do, and again up to retries times, wait apart, while
// again holds of its error. It returns do's last error, also when ctx
// ends the wait.
func retryWhile(ctx context.Context, again func(error) bool, retries int, wait time.Duration, do func() error) error {
	err := do()
	for r := 0; err != nil && again(err) && r < retries; r++ {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			return err
		}
		err = do()
	}
	return err
}

// pubAckReply is a stream's answer to a publish: an acknowledgement, or
// an error.
type pubAckReply struct {
	jetstream.PubAck
	Error *jetstream.APIError `json:"error,omitempty"`
}

// decodePubAck reads a stream's answer to a publish as nats.go does: an
// error is a *jetstream.APIError (errors.Is matches it by its code), an
// answer that is neither an error nor names a stream is
// jetstream.ErrInvalidJSAck.
func decodePubAck(data []byte) (*jetstream.PubAck, error) {
	var ack pubAckReply
	if err := json.Unmarshal(data, &ack); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if ack.Error != nil {
		return nil, fmt.Errorf("nats: %w", ack.Error)
	}
	if ack.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return &ack.PubAck, nil
}

// putKey stores data under key in the KV bucket if the key's last
// revision is rev (0: the key never held a value, or its history is
// gone), as jetstream.KeyValue.Update does; a key at another revision is
// an *jetstream.APIError with JSErrCodeStreamWrongLastSequence. Gantry
// makes its buckets itself, with no JetStream domain nor API prefix, so
// a key's subject is $KV.<bucket>.<key>.
func (q *Queue) putKey(ctx context.Context, bucket, key string, data []byte, rev uint64) (uint64, error) {
	m := &nats.Msg{Subject: "$KV." + bucket + "." + key, Data: data,
		Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: {strconv.FormatUint(rev, 10)}}}
	ack, err := q.publishSync(ctx, m)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}
