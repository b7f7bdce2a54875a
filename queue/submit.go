package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ReplyToHeader names the subject a durable submission's publisher wants
// the outcome on. The message's own reply subject is taken by JetStream's
// publish acknowledgement, so the publisher names another one here.
const ReplyToHeader = "Gantry-Reply-To"

// Submission is one message taken from gantry.submit.
type Submission struct {
	Data []byte
	// MsgID is the Nats-Msg-Id header, empty when absent.
	MsgID string
	// ReplyTo is the Gantry-Reply-To header, empty when absent.
	ReplyTo string
	// Delivered counts the deliveries of the message, 1 the first time.
	Delivered uint64
	// Seq and Stored are the message's stream sequence and the time the
	// stream stored it: together they name the message in every delivery
	// (a sequence alone comes again if the stream is made anew).
	Seq    uint64
	Stored time.Time
}

// submitStopWait bounds how long ConsumeSubmissionMsgs, once its ctx is
// done, waits for the submissions its subscription still holds, to give
// them back.
const submitStopWait = 2 * time.Second

// ConsumeSubmissionMsgs calls handle for each message on gantry.submit,
// with the headers the server acts on, until ctx is done. A message is
// removed once handle returns nil and handed out again a second later
// otherwise. Those taken and not handled when ctx ends are handed out
// again at once, to the next server (durable.GiveBack).
func (q *Queue) ConsumeSubmissionMsgs(ctx context.Context, handle func(Submission) error) error {
	d, err := q.consumeDurable(ctx, StreamSubmit, jetstream.ConsumerConfig{
		Durable:     "server",
		Description: "gantry: the server takes durable submissions",
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     30 * time.Second,
	}, func(m jetstream.Msg) {
		sub := Submission{Data: m.Data(), MsgID: m.Headers().Get(jetstream.MsgIDHeader),
			ReplyTo: m.Headers().Get(ReplyToHeader)}
		if md, err := m.Metadata(); err == nil {
			sub.Delivered, sub.Seq, sub.Stored = md.NumDelivered, md.Sequence.Stream, md.Timestamp
		}
		if err := handle(sub); err != nil {
			_ = m.NakWithDelay(time.Second)
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		return fmt.Errorf("submissions consumer: %w", err)
	}
	defer d.Stop()
	for {
		select {
		case <-ctx.Done():
			// The submissions taken and not yet handled go to the next
			// server at once, not after the ack wait.
			d.GiveBack(submitStopWait)
			return nil
		case err := <-d.Lost():
			d.restore(ctx, err)
		}
	}
}
