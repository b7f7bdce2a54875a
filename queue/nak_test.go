package queue

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/embedded"
)

// TestNakOutlivesARestart: a job handed back (Nak with no delay, as a
// worker shutting down hands back the task it stopped) is handed out again
// at once, and also soon after the NATS server restarts on the same store
// (gantry up restarted), not once its lease, the ack wait (a minute here),
// runs out: JetStream keeps a plain nak's redelivery in memory only, and a
// nak it has not applied when it stops is dropped.
func TestNakOutlivesARestart(t *testing.T) {
	const ackWait = time.Minute
	dir := t.TempDir()
	ctx := context.Background()
	start := func() (*JobConsumer, func()) {
		t.Helper()
		ns, err := embedded.Start(embedded.Options{StoreDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := Dial(ctx, ConnOptions{URL: ns.ClientURL()})
		if err != nil {
			ns.Shutdown()
			t.Fatal(err)
		}
		stop := func() { nc.Close(); ns.Shutdown() }
		t.Cleanup(stop)
		q, err := New(nc, WithAckWait(ackWait))
		if err != nil {
			t.Fatal(err)
		}
		if err := q.EnsureStreams(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := q.PublishJob(ctx, &jobs.Job{RunID: "r1", Attempt: 1, Cluster: "default"}); err != nil {
			t.Fatal(err) // the second time a duplicate, dropped
		}
		cons, err := q.Jobs(ctx, "default", "w1")
		if err != nil {
			t.Fatal(err)
		}
		return cons, stop
	}
	// soon takes the job, which must come well before its lease runs out.
	soon := func(cons *JobConsumer, delivered uint64) *Delivery {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, ackWait/3)
		defer cancel()
		d, err := cons.Next(sctx)
		if err != nil {
			t.Fatalf("delivery %d not within %s (ack wait %s): %v", delivered, ackWait/3, ackWait, err)
		}
		if d.Job().RunID != "r1" || d.Delivered() != delivered {
			t.Fatalf("got %s, delivery %d; want r1, delivery %d", d.Job().RunID, d.Delivered(), delivered)
		}
		return d
	}

	cons, stop := start()
	d := soon(cons, 1)
	if err := d.Nak(0); err != nil {
		t.Fatal(err)
	}
	d = soon(cons, 2) // another worker would take it at once
	if err := d.InProgress(); err != nil {
		t.Fatal(err)
	}
	if err := d.Nak(0); err != nil {
		t.Fatal(err)
	}
	if err := d.InProgress(); err == nil {
		t.Fatal("a lease renewed after its nak, which would hold the job back")
	}
	stop()

	cons, _ = start()
	soon(cons, 3)
}
