package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantry-dev/gantry/jobs"
)

func TestAckSubjectSeq(t *testing.T) {
	for _, tt := range []struct {
		subject string
		seq     uint64
		ok      bool
	}{
		{"$JS.ACK.GANTRY_JOBS.cluster_default.1.42.7.1712345678901234567.0", 42, true},
		{"$JS.ACK._.ABCDEFHASH.GANTRY_JOBS.cluster_default.3.42.9.1712345678901234567.0", 42, true},
		{"$JS.ACK.hub.ABCDEFHASH.GANTRY_JOBS.worker_w1.3.42.9.1712345678901234567.0.rAnD0m", 42, true},
		{"$JS.ACK.GANTRY_EVENTS.server.1.42.7.1712345678901234567.0", 0, false}, // another stream's
		{"$JS.ACK.GANTRY_JOBS.cluster_default.1.0.7.1712345678901234567.0", 0, false},
		{"$JS.ACK.GANTRY_JOBS.cluster_default.1.x.7.1712345678901234567.0", 0, false},
		{"$JS.ACK.GANTRY_JOBS.cluster_default.1.42.7.1712345678901234567", 0, false},
		{"$JS.ACK.x.GANTRY_JOBS.cluster_default.1.42.7.1712345678901234567.0", 0, false}, // 8 tokens
		{"$JS.ACK.GANTRY_JOBS.*.1.42.7.1712345678901234567.0", 0, false},
		{"$JS.ACK.GANTRY_JOBS..1.42.7.1712345678901234567.0", 0, false},
		{"_INBOX.abc", 0, false},
		{"", 0, false},
	} {
		seq, ok := AckSubjectSeq(tt.subject)
		if seq != tt.seq || ok != tt.ok {
			t.Errorf("AckSubjectSeq(%q) = %d, %v; want %d, %v", tt.subject, seq, ok, tt.seq, tt.ok)
		}
	}
}

func FuzzAckSubjectSeq(f *testing.F) {
	f.Add("$JS.ACK.GANTRY_JOBS.cluster_default.1.42.7.1712345678901234567.0")
	f.Add("$JS.ACK._.HASH.GANTRY_JOBS.cluster_default.3.42.9.1712345678901234567.0.tok")
	f.Add("$JS.ACK.GANTRY_JOBS")
	f.Fuzz(func(t *testing.T, s string) {
		seq, ok := AckSubjectSeq(s)
		if ok != (seq > 0) {
			t.Fatalf("AckSubjectSeq(%q) = %d, %v", s, seq, ok)
		}
		if ok && (len(s) < len(ackSubjectPrefix) || s[:len(ackSubjectPrefix)] != ackSubjectPrefix) {
			t.Fatalf("AckSubjectSeq(%q) took a subject outside $JS.ACK", s)
		}
	})
}

// TestDeliveryAnsweredByItsAckSubject: a job delivery's ack subject, kept
// by a worker that then died (its lease 10 minutes long here), is enough
// for the worker's next life to hand the job back at once (NakDelivery) or
// take it out of the queue (AckDelivery).
//
// It also pins down what JetStream does with an answer on the subject of
// an old delivery of a message delivered again since (nats-server's
// consumer.processNak and processAckMsg go by the stream sequence): it
// applies it to the new delivery. A worker must only answer an old
// delivery when the run's claim says nobody took the job since
// (worker.handBackLeftover); should NATS one day ignore such answers,
// this test says so.
func TestDeliveryAnsweredByItsAckSubject(t *testing.T) {
	const ackWait = 10 * time.Minute
	ctx := context.Background()
	q, err := New(newConn(t), WithAckWait(ackWait))
	if err != nil {
		t.Fatal(err)
	}
	if err := q.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	// soon takes the next delivery, which must come long before the
	// lease of the one before runs out: only an answer explains it.
	soon := func(cons *JobConsumer, delivered uint64) *Delivery {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, ackWait/10)
		defer cancel()
		d, err := cons.Next(sctx)
		if err != nil {
			t.Fatalf("delivery %d not within %s (ack wait %s): %v", delivered, ackWait/10, ackWait, err)
		}
		if d.Delivered() != delivered {
			t.Fatalf("got delivery %d of %s; want delivery %d", d.Delivered(), d.Job().RunID, delivered)
		}
		return d
	}
	seq, err := q.PublishJob(ctx, &jobs.Job{RunID: "r1", Attempt: 1, Cluster: "default"})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := q.Jobs(ctx, "default", "w1")
	if err != nil {
		t.Fatal(err)
	}
	first := soon(cons, 1)
	kept := first.AckSubject()
	if got, ok := AckSubjectSeq(kept); !ok || got != seq {
		t.Fatalf("AckSubjectSeq(%q) = %d, %v; want %d", kept, got, ok, seq)
	}

	// The worker's next life, with a connection and consumer of its own.
	q2, err := New(newConnTo(t, q), WithAckWait(ackWait))
	if err != nil {
		t.Fatal(err)
	}
	cons2, err := q2.Jobs(ctx, "default", "w1")
	if err != nil {
		t.Fatal(err)
	}
	if err := q2.NakDelivery(ctx, kept); err != nil {
		t.Fatal(err)
	}
	second := soon(cons2, 2)

	// An answer on the first delivery's subject acts on the second.
	if err := q2.NakDelivery(ctx, kept); err != nil {
		t.Fatal(err)
	}
	third := soon(cons2, 3)
	if err := q2.AckDelivery(ctx, second.AckSubject()); err != nil {
		t.Fatal(err)
	}
	if queued, err := q2.JobQueued(ctx, seq); err != nil || queued {
		t.Fatalf("after an ack on the second delivery's subject, while the third is out: queued %v, %v", queued, err)
	}
	// A nak of a job that left the queue brings nothing back.
	if err := q2.NakDelivery(ctx, third.AckSubject()); err != nil {
		t.Fatal(err)
	}
	if queued, err := q2.JobQueued(ctx, seq); err != nil || queued {
		t.Fatalf("after a nak of the acknowledged job: queued %v, %v", queued, err)
	}

	for _, bad := range []string{"", "_INBOX.x", "$JS.ACK.GANTRY_EVENTS.server.1.42.7.1712345678901234567.0"} {
		if err := q2.NakDelivery(ctx, bad); !errors.Is(err, ErrNotAckSubject) {
			t.Errorf("NakDelivery(%q) = %v, want ErrNotAckSubject", bad, err)
		}
		if err := q2.AckDelivery(ctx, bad); !errors.Is(err, ErrNotAckSubject) {
			t.Errorf("AckDelivery(%q) = %v, want ErrNotAckSubject", bad, err)
		}
	}
}

// newConnTo opens another connection to q's NATS server.
func newConnTo(t *testing.T, q *Queue) *nats.Conn {
	t.Helper()
	return dialTest(t, context.Background(), ConnOptions{URL: q.Conn().ConnectedUrl()})
}
