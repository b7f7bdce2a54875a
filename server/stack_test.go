package server

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
)

// testStack starts an embedded NATS server with gantry's streams and opens
// a store, all removed when the test ends.
func testStack(tb testing.TB, opts ...queue.Option) (*nats.Conn, *queue.Queue, *storage.DB) {
	tb.Helper()
	ctx := context.Background()
	nc := testNATS(tb)
	q, err := queue.New(nc, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := q.EnsureStreams(ctx); err != nil {
		tb.Fatal(err)
	}
	db, err := storage.Open(ctx, filepath.Join(tb.TempDir(), "gantry.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return nc, q, db
}

// testNATS starts an embedded NATS server with JetStream and connects to
// it, both removed when the test ends.
func testNATS(tb testing.TB) *nats.Conn {
	tb.Helper()
	ns, err := embedded.Start(embedded.Options{StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// createQueued stores runs that are queued for their first attempt, as a
// submission leaves them.
func createQueued(tb testing.TB, db *storage.DB, ids ...string) {
	tb.Helper()
	now := time.Now().UTC()
	for _, id := range ids {
		r := &jobs.Run{RunID: id, Status: jobs.StatusQueued, Cluster: "default", CreatedAt: now,
			Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: now}}}
		if _, _, err := db.CreateRun(context.Background(), r); err != nil {
			tb.Fatal(err)
		}
	}
}
