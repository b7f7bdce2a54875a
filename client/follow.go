package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// FollowOptions say what Follow reports as a run goes on.
type FollowOptions struct {
	// Events, when set, is called with every status the server reports.
	Events func(jobs.Event)
	// Logs, when set, is called with the run's log batches in order, from
	// the first line; an error it returns ends Follow.
	Logs func(*jobs.LogBatch) error
	// Container limits Logs to one container.
	Container string
}

// Follow reports a run's status changes and log lines until it ends, and
// returns the run as stored then.
func (c *Client) Follow(ctx context.Context, runID string, o FollowOptions) (*jobs.Run, error) {
	if o.Logs == nil {
		return c.WaitFunc(ctx, runID, o.Events)
	}
	var (
		r    *jobs.Run
		werr error
		done = make(chan struct{})
	)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(done)
		r, werr = c.WaitFunc(wctx, runID, o.Events)
	}()
	err := c.Logs(ctx, runID, LogOptions{Container: o.Container, Follow: true}, o.Logs)
	if err != nil {
		cancel()
		<-done
		return nil, err
	}
	<-done
	return r, werr
}

// Events delivers every event of a run, from its first, as stored in
// GANTRY_EVENTS (the worker's and the server's: Source tells them apart),
// until ctx is done. The channel is closed when the watch ends; it does not
// close by itself when the run ends.
func (c *Client) Events(ctx context.Context, runID string) (<-chan jobs.Event, error) {
	return c.q.WatchRun(ctx, runID)
}

// EventsFromLatest is Events from the run's latest event on, for a reader
// that joins a run under way: the first event says where it stands (queued
// and why, pulling its image...), without the run's history.
func (c *Client) EventsFromLatest(ctx context.Context, runID string) (<-chan jobs.Event, error) {
	return c.q.WatchRunFromLatest(ctx, runID)
}

// LogPosition says where a run's logs are in JetStream (runs.logs).
type LogPosition struct {
	RunID        string `json:"runId"`
	Stream       string `json:"stream"`
	Subject      string `json:"subject"`
	Messages     uint64 `json:"messages"`
	LastSequence uint64 `json:"lastSequence"`
	Containers   []struct {
		Container    string `json:"container"`
		Subject      string `json:"subject"`
		Messages     uint64 `json:"messages"`
		LastSequence uint64 `json:"lastSequence"`
	} `json:"containers"`
	Ended bool `json:"ended"`
}

// LogPosition returns where a run's logs are: a reader that has read up to
// LastSequence has every line written so far.
func (c *Client) LogPosition(ctx context.Context, runID, container string) (*LogPosition, error) {
	var p LogPosition
	if err := c.call(ctx, "runs.logs", map[string]string{"runId": runID, "container": container}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Enqueue publishes a submission on gantry.submit and returns once
// JetStream has stored it: the server creates the run when it takes the
// message, at once or, if it is down, when it is back. msgID (the
// Nats-Msg-Id; req.IdempotencyKey when empty, a fresh id when both are)
// makes a repeated Enqueue create one run.
func (c *Client) Enqueue(ctx context.Context, req *jobs.SubmitRequest, msgID string) error {
	_, err := c.enqueue(ctx, req, msgID, "")
	return err
}

func (c *Client) enqueue(ctx context.Context, req *jobs.SubmitRequest, msgID, replyTo string) (*jetstream.PubAck, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if msgID == "" {
		msgID = req.IdempotencyKey
	}
	if msgID == "" {
		msgID = nuid.Next()
	}
	m := nats.NewMsg(queue.SubmitSubject)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	if replyTo != "" {
		m.Header.Set(queue.ReplyToHeader, replyTo)
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, err
	}
	ack, err := js.PublishMsg(ctx, m)
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		if noJS := queue.CheckJetStream(c.nc); noJS != nil {
			return nil, noJS
		}
		return nil, fmt.Errorf("publish to %s: no stream takes it: has a gantry server ever started on this NATS? %w", queue.SubmitSubject, err)
	}
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", queue.SubmitSubject, err)
	}
	return ack, nil
}

// SubmitDurable is Enqueue that then waits, as long as ctx allows, for the
// server to take the submission, and returns the run it created. Its reply
// comes on a fresh inbox named in the Gantry-Reply-To header. A duplicate
// that JetStream drops gets no reply: SubmitDurable then asks the server
// for the run of the idempotency key's first submission... which it can
// only do when req.IdempotencyKey is set; otherwise it waits for ctx.
func (c *Client) SubmitDurable(ctx context.Context, req *jobs.SubmitRequest, msgID string) (*jobs.Run, error) {
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	ack, err := c.enqueue(ctx, req, msgID, inbox)
	if err != nil {
		return nil, err
	}
	if ack.Duplicate && req.IdempotencyKey != "" {
		// The first submission's reply went elsewhere: submitting again by
		// request returns the run the key made.
		return c.Submit(ctx, req)
	}
	m, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("wait for the server to take the submission: %w", err)
	}
	var r jobs.Run
	apiErr, err := decodeReply(m.Data, &r)
	if apiErr != nil {
		return nil, apiErr
	}
	if err != nil {
		return nil, fmt.Errorf("submission reply: %w", err)
	}
	return &r, nil
}
