package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
)

// TestDataBucketMadeAfterFailingAtStart: a stage data bucket the server
// could not make at its start is made once JetStream takes it, with the
// server's retention, without a restart, and the server says so once. A
// stream that holds the bucket's subjects makes JetStream refuse it, as
// it would refuse or not answer while a cluster elects its leader; here
// the test decides when that ends. A worker's stager, which makes a
// missing bucket with the default retention, may get there first.
func TestDataBucketMadeAfterFailingAtStart(t *testing.T) {
	nc := testNATS(t) // stack_test.go; not testStack: the blocker goes first
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BLOCKER",
		Subjects: []string{"$O." + queue.DataBucket + ".M.>"}}); err != nil {
		t.Fatal(err)
	}

	db, err := storage.Open(ctx, filepath.Join(t.TempDir(), "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := queue.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var logged syncBuffer // followups_test.go
	const retention = 2 * time.Hour
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- New(db, q, WithDataRetention(retention), WithLogger(zerolog.New(&logged))).Run(sctx)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	}()

	// until polls f, within ctx's deadline, until it is true.
	until := func(what string, f func() bool) {
		t.Helper()
		for !f() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: not within a minute; server log:\n%s", what, logged.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	const failed, made = "create the stage data bucket", "created the stage data bucket, after failing at start"
	until("the server's first try fails", func() bool { return strings.Contains(logged.String(), failed) })
	if _, err := js.ObjectStore(ctx, queue.DataBucket); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("bucket with its subjects taken: %v, want none", err)
	}

	if err := js.DeleteStream(ctx, "BLOCKER"); err != nil {
		t.Fatal(err)
	}
	// A worker may make it first, with the default retention (it is not
	// told the server's): the server's then replaces it.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f.csv"), []byte("x\n"), 0o644)
	if err := queue.NewStager(js, 0, 0).Put(ctx, "pr-1", "extract", "run-1", 1, dir); err != nil {
		t.Fatal(err)
	}
	var info *jetstream.StreamInfo
	until("the bucket made with the server's retention", func() bool {
		st, err := js.Stream(ctx, "OBJ_"+queue.DataBucket)
		if err != nil {
			return false
		}
		info = st.CachedInfo()
		return info.Config.MaxAge == retention+queue.DataBucketSlack
	})
	until("the server says it made it", func() bool { return strings.Contains(logged.String(), made) })
	if info.Config.Replicas != 1 {
		t.Errorf("bucket replicas %d, want the server's 1", info.Config.Replicas)
	}
	if n := strings.Count(logged.String(), made); n != 1 {
		t.Errorf("said %d times that it made the bucket, want once:\n%s", n, logged.String())
	}
}
