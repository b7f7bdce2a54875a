package server

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/worker"
)

// Stop records the stop in a claim no worker holds, before it sends the
// cancel message; a claim a worker holds is left alone, and that worker
// hears of the stop from the message.
func TestStopRecordsItInTheClaim(t *testing.T) {
	ctx := context.Background()
	nc, q, db := testStack(t)
	s := New(db, q)
	createQueued(t, db, "queued", "held")
	held := []byte(`{"attempt":1,"worker":"w0","job":1,"time":"2026-01-01T00:00:00Z"}`)
	if _, err := q.PutClaim(ctx, "held", held, 0); err != nil {
		t.Fatal(err)
	}
	msgs, err := nc.SubscribeSync(queue.CancelSubject)
	if err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{"queued", "held"} {
		if _, err := s.Stop(ctx, id, "not wanted"); err != nil {
			t.Fatalf("stop %s: %v", id, err)
		}
		m, err := msgs.NextMsg(2 * time.Second)
		if err != nil {
			t.Fatalf("stop %s: no cancel message: %v", id, err)
		}
		var cm queue.CancelMsg
		if json.Unmarshal(m.Data, &cm); cm.RunID != id {
			t.Fatalf("cancel message %s, want run %s", m.Data, id)
		}
	}

	data, c := storedStop(t, q, "queued")
	if c.Canceled != "not wanted" || c.Attempt != 0 {
		t.Fatalf("claim of the queued run %s, want the stop in it", data)
	}
	// A worker taking the job now would only report it canceled.
	if _, ok := worker.CancelClaim(data, "again", 1, false); !ok {
		t.Fatal("a stop claim reads as held by a worker")
	}
	if data, _, _ := q.Claim(ctx, "held"); string(data) != string(held) {
		t.Fatalf("claim a worker holds changed to %s", data)
	}
	if ok, reason, _ := q.Canceled(ctx, "held"); !ok || reason != "not wanted" {
		t.Fatalf("cancel bucket: %v %q", ok, reason)
	}
}

// A run whose first attempt failed and whose retry waits has the claim of
// attempt 1, which workers no longer mark done when their ack goes
// through: the server, which knows attempt 2 is current, records the stop
// in it; the worker that takes attempt 2's job only reports it canceled.
func TestStopDuringRetryRecordsItInTheClaim(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	s := New(db, q)
	now := time.Now().UTC()
	r := &jobs.Run{RunID: "retrying", Status: jobs.StatusQueued, Cluster: "default", CreatedAt: now,
		Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusFailed, CreatedAt: now}, {Attempt: 2, Status: jobs.StatusQueued, CreatedAt: now}}}
	if _, _, err := db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	ended := []byte(`{"attempt":1,"worker":"w0","job":1,"seq":3,"time":"2026-01-01T00:00:00Z"}`)
	if _, err := q.PutClaim(ctx, "retrying", ended, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stop(ctx, "retrying", "not wanted"); err != nil {
		t.Fatal(err)
	}
	if data, c := storedStop(t, q, "retrying"); c.Canceled != "not wanted" || c.Attempt != 1 {
		t.Fatalf("claim of the retrying run %s, want the stop in it", data)
	}
}

// storedClaim is what the stop tests read of a claim.
type storedClaim struct {
	Attempt  int    `json:"attempt"`
	Canceled string `json:"canceled"`
}

// storedStop reads run id's claim.
func storedStop(t *testing.T, q *queue.Queue, id string) ([]byte, storedClaim) {
	t.Helper()
	data, _, err := q.Claim(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var c storedClaim
	json.Unmarshal(data, &c)
	return data, c
}
