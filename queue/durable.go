package queue

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The server's loops and a worker's job consumers are set up once, on
// durable consumers. An operator's "nats consumer rm", or a NATS cluster
// losing a consumer, deletes one under them: nats.go then ends a Consume
// without a word (ErrConsumerDeleted goes only to an error handler) and
// answers each Fetch with "no responders", so the server stopped taking
// reports and submissions, and a worker stopped taking jobs, while both
// looked alive. They make the consumer again, with its config, and go on.

// restoreRetry is how long a loop waits before it tries again to make a
// deleted consumer it could not make.
const restoreRetry = time.Second

// consumerGone reports whether err from a pull may mean that the consumer
// was deleted: ErrConsumerDeleted says so; "no responders" (nothing reads
// the consumer's pull subject) and ErrConsumerNotFound only when the
// consumer's info says it is not found (JetStream itself may be away).
func consumerGone(ctx context.Context, cons jetstream.Consumer, err error) bool {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted):
		return true
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrConsumerNotFound):
		_, err := cons.Info(ctx)
		return errors.Is(err, jetstream.ErrConsumerNotFound)
	}
	return false
}

// durable is a Consume on a durable consumer that is made again when it is
// deleted. Its owner calls restore when Lost fires, and Stop at the end,
// from one goroutine.
type durable struct {
	q       *Queue
	stream  string
	cfg     jetstream.ConsumerConfig
	handler jetstream.MessageHandler
	opts    []jetstream.PullConsumeOpt

	cons jetstream.Consumer
	cc   jetstream.ConsumeContext
	lost chan error // capacity 1: an error that may mean the consumer is gone
}

// consumeDurable creates (or updates) the consumer of stream with cfg and
// consumes it with handler. Its errors are those of the first creation.
func (q *Queue) consumeDurable(ctx context.Context, stream string, cfg jetstream.ConsumerConfig,
	handler jetstream.MessageHandler, opts ...jetstream.PullConsumeOpt) (*durable, error) {
	d := &durable{q: q, stream: stream, cfg: cfg, handler: handler, lost: make(chan error, 1)}
	d.opts = append(append([]jetstream.PullConsumeOpt(nil), opts...), jetstream.ConsumeErrHandler(d.onError))
	if err := d.start(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *durable) start(ctx context.Context) error {
	cons, err := d.q.js.CreateOrUpdateConsumer(ctx, d.stream, d.cfg)
	if err != nil {
		return err
	}
	cc, err := cons.Consume(d.handler, d.opts...)
	if err != nil {
		return err
	}
	d.cons, d.cc = cons, cc
	return nil
}

func (d *durable) onError(_ jetstream.ConsumeContext, err error) {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, nats.ErrNoResponders) {
		select {
		case d.lost <- err:
		default:
		}
	}
}

// Lost fires on an error that may mean the consumer was deleted.
func (d *durable) Lost() <-chan error { return d.lost }

// restore makes the consumer again and consumes it anew if err (from Lost)
// meant it was deleted, trying until it succeeds or ctx is done.
func (d *durable) restore(ctx context.Context, err error) {
	if !consumerGone(ctx, d.cons, err) {
		return
	}
	log := d.q.cfg.log.With().Str("stream", d.stream).Str("consumer", d.cfg.Durable).Logger()
	log.Warn().AnErr("cause", err).Msg("durable consumer deleted under its loop: making it again")
	d.cc.Stop()
	for {
		err := d.start(ctx)
		if err == nil {
			return
		}
		log.Warn().Err(err).Msg("make the deleted consumer again")
		select {
		case <-time.After(restoreRetry):
		case <-ctx.Done():
			return
		}
	}
}

// Stop ends the consumption.
func (d *durable) Stop() { d.cc.Stop() }
