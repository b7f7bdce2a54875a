package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A job delivery's ack subject ($JS.ACK.<stream>.<consumer>.<delivered>.
// <stream seq>.<consumer seq>.<time>.<pending>, with a domain and an
// account hash after ACK on newer servers) is all it takes to answer it.
// A worker keeps it with the attempt's containers (a label), so that the
// worker restarted after a crash can hand back the job of an attempt its
// earlier life left running, rather than wait for the lease to run out.
//
// JetStream applies an ack, a nak or a renewal to the message by its
// stream sequence alone (nats-server's consumer.processNak,
// processAckMsg, progressUpdate): one sent on the subject of an old
// delivery of a message delivered again since acts on the new delivery.
// Only the message's leaving the consumer's pending list, or the ack
// floor passing the old delivery, makes it a no-op. Whoever answers an
// old delivery must know from elsewhere (the run's claim) that no other
// worker holds a newer one.

// ackSubjectPrefix begins every ack subject.
const ackSubjectPrefix = "$JS.ACK."

// AckSubjectSeq returns the stream sequence of the jobs-stream message
// whose delivery has ack subject s; ok is false for a subject that is not
// the ack subject of a delivery of the jobs stream.
func AckSubjectSeq(s string) (seq uint64, ok bool) {
	rest, found := strings.CutPrefix(s, ackSubjectPrefix)
	if !found || strings.ContainsAny(rest, " \t\r\n*>") {
		return 0, false
	}
	tokens := strings.Split(rest, ".")
	// Old servers: stream, consumer, delivered, stream seq, consumer seq,
	// time, pending (7). Newer ones put the domain and account hash
	// first, and may add tokens at the end (nats.go accepts 9 or more).
	switch {
	case len(tokens) == 7:
	case len(tokens) >= 9:
		tokens = tokens[2:]
	default:
		return 0, false
	}
	for _, t := range tokens[:7] {
		if t == "" {
			return 0, false
		}
	}
	if tokens[0] != StreamJobs {
		return 0, false
	}
	for _, t := range tokens[2:7] {
		if _, err := strconv.ParseUint(t, 10, 64); err != nil {
			return 0, false
		}
	}
	seq, _ = strconv.ParseUint(tokens[3], 10, 64)
	return seq, seq > 0
}

// ErrNotAckSubject is returned by NakDelivery and AckDelivery for a
// subject that is not a jobs-stream delivery's ack subject.
var ErrNotAckSubject = errors.New("queue: not the ack subject of a job delivery")

// NakDelivery hands back the job of the delivery whose ack subject is
// ackSubject, to be delivered again at once (after minNakDelay, which
// keeps the nak in the consumer's stored state, as Delivery.Nak does),
// and returns once the server took the nak. A delivery whose message left
// the queue (acknowledged) or whose consumer was made again is ignored by
// the server. See above for an old delivery of a message delivered again.
func (q *Queue) NakDelivery(ctx context.Context, ackSubject string) error {
	return q.answerDelivery(ctx, "nak", ackSubject, nakBody(minNakDelay))
}

// AckDelivery takes the job of the delivery whose ack subject is
// ackSubject out of the queue, and returns once the server confirmed.
func (q *Queue) AckDelivery(ctx context.Context, ackSubject string) error {
	return q.answerDelivery(ctx, "ack", ackSubject, []byte("+ACK"))
}

// answerDelivery sends body to a job delivery's ack subject and waits
// for the server's confirmation; what names the answer in errors.
func (q *Queue) answerDelivery(ctx context.Context, what, ackSubject string, body []byte) error {
	if _, ok := AckSubjectSeq(ackSubject); !ok {
		return fmt.Errorf("%s %q: %w", what, ackSubject, ErrNotAckSubject)
	}
	ctx, cancel := context.WithTimeout(ctx, nakTimeout)
	defer cancel()
	if _, err := q.nc.RequestWithContext(ctx, ackSubject, body); err != nil {
		return fmt.Errorf("%s job delivery %s: %w", what, ackSubject, err)
	}
	return nil
}

// nakBody is what nats.go's NakWithDelay sends.
func nakBody(delay time.Duration) []byte {
	return fmt.Appendf(nil, `-NAK {"delay": %d}`, delay.Nanoseconds())
}
