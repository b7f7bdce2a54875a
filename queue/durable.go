package queue

import (
	"context"
	"errors"
	"sync"
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
// deleted. Its owner calls restore when Lost fires, and GiveBack or Stop
// at the end, one at a time.
type durable struct {
	q       *Queue
	stream  string
	cfg     jetstream.ConsumerConfig
	handler jetstream.MessageHandler
	opts    []jetstream.PullConsumeOpt

	cons jetstream.Consumer
	cc   jetstream.ConsumeContext
	lost chan error // capacity 1: an error that may mean the consumer is gone

	// From GiveBack on, the handler gets no message: one delivered is
	// held until the subscription is gone, then given back (gone).
	mu       sync.Mutex
	stopping bool
	held     []jetstream.Msg
	gone     bool
}

// consumeDurable creates (or updates) the consumer of stream with cfg and
// consumes it with handler. Its errors are those of the first creation.
func (q *Queue) consumeDurable(ctx context.Context, stream string, cfg jetstream.ConsumerConfig,
	handler jetstream.MessageHandler, opts ...jetstream.PullConsumeOpt) (*durable, error) {
	d := &durable{q: q, stream: stream, cfg: cfg, lost: make(chan error, 1)}
	d.handler = func(m jetstream.Msg) {
		if !d.holdBack(m) {
			handler(m)
		}
	}
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

// Stop ends the consumption. The messages received and not yet handled
// are dropped, unacknowledged: JetStream delivers them again only after
// the consumer's ack wait (GiveBack does not leave them to it).
func (d *durable) Stop() { d.cc.Stop() }

// GiveBack ends the consumption and gives the messages received and not
// handled back to JetStream, each with a Nak, so that they go at once to
// the next consumer (the next server) rather than after the consumer's
// ack wait, as after a crash. From the call on, the handler gets no
// message: those the subscription still holds are drained from it, for
// up to wait, and given back once it is gone (JetStream would deliver
// them to it again); one delivered after that is given back as it comes.
// It returns once the handler is done with the message it had, or after
// wait (NATS away); a message on its way then waits out the ack wait.
func (d *durable) GiveBack(wait time.Duration) {
	d.mu.Lock()
	d.stopping = true
	d.mu.Unlock()
	d.cc.Drain()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-d.cc.Closed(): // at once if the subscription is gone
	case <-t.C:
	}
	d.mu.Lock()
	held := d.held
	d.held, d.gone = nil, true
	d.mu.Unlock()
	for _, m := range held {
		_ = m.Nak()
	}
}

// holdBack keeps m from the handler once GiveBack was called, and reports
// whether it did.
func (d *durable) holdBack(m jetstream.Msg) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.gone:
		_ = m.Nak()
	case d.stopping:
		d.held = append(d.held, m)
	default:
		return false
	}
	return true
}
