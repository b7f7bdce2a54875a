package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-dev/gantry/queue/natstest"
)

// isTransient is what the worker asks of a Put's error.
func isTransient(err error) bool {
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}

// writeZeros writes a file of size zero bytes into a new directory.
func writeZeros(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStagerPutErrorsOfANATSRestart: a Put cut short by a NATS server
// restarting (before or during its upload), or by its stream electing a
// leader (R3), fails with an error the worker is told to try again after
// (Transient); so do the kinds of error each gave here (see transient).
// The JetStream timeout is cut to 500 ms, under the 1.5 s the server is
// down, so that the first case fails whatever its timing.
func TestStagerPutErrorsOfANATSRestart(t *testing.T) {
	ctx := context.Background()
	stager := func(t *testing.T, urls string, replicas int) (*Stager, *nats.Conn) {
		t.Helper()
		nc := dialTest(t, ctx, ConnOptions{URL: urls, Reconnect: true})
		js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		s := NewStager(js, 0, replicas)
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		natstest.Eventually(t, tctx, "bucket", s.EnsureBucket)
		return s, nc
	}
	// onFirstChunk calls f once the upload's first chunk reaches NATS.
	onFirstChunk := func(t *testing.T, nc *nats.Conn, f func()) {
		t.Helper()
		// The test's end waits for f, which may come after Put returned:
		// a restart begun after the server's cleanup raced with it.
		var (
			once    sync.Once
			mu      sync.Mutex
			ended   bool
			running sync.WaitGroup
		)
		sub, err := nc.Subscribe("$O."+DataBucket+".C.>", func(*nats.Msg) {
			once.Do(func() {
				mu.Lock()
				defer mu.Unlock()
				if !ended {
					running.Go(f)
				}
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sub.Unsubscribe()
			mu.Lock()
			ended = true
			mu.Unlock()
			running.Wait()
		})
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("restart before the upload", func(t *testing.T) {
		srv := natstest.StartRestartable(t)
		s, _ := stager(t, srv.URL, 1)
		srv.RestartAfter(1500 * time.Millisecond)
		err := s.Put(ctx, "pr-1", "extract", "r0", 1, writeZeros(t, 4<<20))
		if err == nil || !isTransient(err) {
			t.Fatalf("Put with NATS down: %v, want a transient error", err)
		}
		t.Log(err)
	})
	t.Run("restart during the upload", func(t *testing.T) {
		srv := natstest.StartRestartable(t)
		s, _ := stager(t, srv.URL, 1)
		watch, err := nats.Connect(srv.URL, nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		defer watch.Close()
		onFirstChunk(t, watch, func() { srv.RestartAfter(1500 * time.Millisecond) })
		// Fast enough, the upload may end before the server stops.
		if err := s.Put(ctx, "pr-1", "extract", "r0", 1, writeZeros(t, 64<<20)); err != nil && !isTransient(err) {
			t.Fatalf("Put with NATS restarting: %v, want a transient error", err)
		} else {
			t.Log(err)
		}
	})
	t.Run("stream leader election during the upload", func(t *testing.T) {
		urls := natstest.Cluster(t)
		s, nc := stager(t, strings.Join(urls, ","), 3)
		onFirstChunk(t, nc, func() {
			if _, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN.OBJ_"+DataBucket, nil, 5*time.Second); err != nil {
				t.Error(err)
			}
		})
		if err := s.Put(ctx, "pr-1", "extract", "r0", 1, writeZeros(t, 64<<20)); err != nil && !isTransient(err) {
			t.Fatalf("Put with its stream electing a leader: %v, want a transient error", err)
		} else {
			t.Log(err)
		}
	})
}

// TestStagerPutWithoutRoom: a Put that NATS refuses for want of room
// fails with an error that says so, naming the bucket and what to change,
// and that the worker does not try again: the bucket's stream with max
// bytes, and a server whose JetStream storage is used up.
func TestStagerPutWithoutRoom(t *testing.T) {
	ctx := context.Background()
	t.Run("stream max bytes", func(t *testing.T) {
		q := newQueue(t)
		if _, err := q.JetStream().CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: DataBucket, MaxBytes: 8 << 20}); err != nil {
			t.Fatal(err)
		}
		err := NewStager(q.JetStream(), 0, 1).Put(ctx, "pr-1", "extract", "r0", 1, writeZeros(t, 16<<20))
		want := "stage extract outputs: store big.bin: the object store bucket gantry-data is full (maximum bytes exceeded: " +
			"a limit set on its stream OBJ_gantry-data): raise it (nats stream edit OBJ_gantry-data), or keep stage files for less time (gantry up --data-retention)"
		if err == nil || err.Error() != want || isTransient(err) {
			t.Fatalf("got %v (transient %v), want\n%s", err, isTransient(err), want)
		}
	})
	t.Run("server storage", func(t *testing.T) {
		ns := natstest.Start(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: t.TempDir(), JetStreamMaxStore: 24 << 20, NoLog: true, NoSigs: true})
		nc := dialTest(t, ctx, ConnOptions{URL: ns.ClientURL()})
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		s := NewStager(js, 0, 1)
		out := writeZeros(t, 16<<20)
		if err := s.Put(ctx, "pr-1", "extract", "r0", 1, out); err != nil {
			t.Fatal(err)
		}
		err = s.Put(ctx, "pr-1", "extract", "r1", 1, out)
		want := "stage extract outputs: store big.bin: NATS has no room left for the object store bucket gantry-data " +
			"(insufficient resources: JetStream's storage limit on the server, max_file_store, or the account's is reached): " +
			"raise it, or keep stage files for less time (gantry up --data-retention)"
		if err == nil || err.Error() != want || isTransient(err) {
			t.Fatalf("got %v (transient %v), want\n%s", err, isTransient(err), want)
		}
	})
}

// TestStagerStoresFilesLargerThanTheStreamQueues: a stage file larger
// than what a stream queues on its way to the store arrives whole, also
// from a store slower than the worker sends. nats.go's ObjectStore.Put
// sent up to 500 MiB of a file before its first ack: NATS dropped what did
// not fit in the queue (128 MiB by default) with "429 too many requests",
// or acked it later than JetStream's timeout, and no file of much more
// than 128 MiB could pass (a GiB failed here within 10 s). Here the queue
// is cut to 16 MiB and the store syncs every write (slower):
// ObjectStore.Put failed within a second ("429 too many requests", or
// "timeout waiting for ack" with a timeout of 500 ms). JetStream's timeout
// is its default, 5 s: with 2 s, a CI run beside other tests' disk writes
// saw a window of 64 chunks, each synced, wait longer than that.
func TestStagerStoresFilesLargerThanTheStreamQueues(t *testing.T) {
	ns := natstest.Start(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), StreamMaxBufferedSize: 16 << 20, SyncAlways: true, NoLog: true, NoSigs: true})
	ctx := context.Background()
	nc := dialTest(t, ctx, ConnOptions{URL: ns.ClientURL()})
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStager(js, 0, 1)
	out := t.TempDir()
	const size = 200 << 20
	f, err := os.Create(filepath.Join(out, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, want), rand.NewChaCha8([32]byte{4}), size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	start := time.Now()
	if err := s.Put(ctx, "pr-1", "extract", "r0", 1, out); err != nil {
		t.Fatalf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	t.Logf("stored %d MiB in %s", size>>20, time.Since(start).Round(time.Millisecond))
	// Stored again, it replaces the first: its chunks go.
	if err := s.Put(ctx, "pr-1", "extract", "r0", 1, out); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "OBJ_"+DataBucket)
	if err != nil {
		t.Fatal(err)
	}
	if si, err := stream.Info(ctx); err != nil || si.State.Bytes > size+size/50 {
		t.Errorf("the bucket holds %d bytes (%v) after the file was stored twice, want one copy", si.State.Bytes, err)
	}
	in := t.TempDir()
	if err := s.Get(ctx, "pr-1", "extract", []string{"r0"}, in); err != nil {
		t.Fatal(err)
	}
	g, err := os.Open(filepath.Join(in, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got := sha256.New()
	if n, _ := io.Copy(got, g); n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("read back %d of %d bytes, same hash: %v", n, size, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
}

// TestStagerPutAgainLeavesNoChunksOfAFailedTry: a Put cut short by a NATS
// restart leaves the chunks it sent before in the bucket when it cannot
// purge them (the server is down); the next Put of the same stage, the
// worker's next try, must purge them, or they stay until the bucket's
// TTL (37 days by default), a copy of the outputs per failed try.
func TestStagerPutAgainLeavesNoChunksOfAFailedTry(t *testing.T) {
	ctx := context.Background()
	srv := natstest.StartRestartable(t)
	nc := dialTest(t, ctx, ConnOptions{URL: srv.URL, Reconnect: true})
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStager(js, 0, 1)
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	out := writeZeros(t, size)
	// The server stops once the upload's 16th chunk (2 MiB) is stored.
	watch, err := nats.Connect(srv.URL, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	var (
		once sync.Once
		seen int
	)
	sub, err := watch.Subscribe("$O."+DataBucket+".C.>", func(*nats.Msg) {
		if seen++; seen == 16 {
			once.Do(func() { srv.RestartAfter(1500 * time.Millisecond) })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	err = s.Put(ctx, "pr-1", "extract", "r0", 1, out)
	sub.Unsubscribe()
	if err == nil {
		t.Fatal("the upload of 64 MiB ended before the server stopped after its 2nd MiB")
	}
	if !isTransient(err) {
		t.Fatalf("Put with NATS restarting: %v, want a transient error", err)
	}
	t.Log(err)
	// The worker's next tries, each as long as it takes: a deadline of
	// 2 s a try (natstest.Eventually) was shorter than storing 64 MiB
	// under -race on a busy machine (about 4 s), and every try failed.
	// Each chunk still has the 500 ms of js to be stored.
	tctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for try := 2; ; try++ {
		err := s.Put(tctx, "pr-1", "extract", "r0", 1, out)
		if err == nil {
			break
		}
		if !isTransient(err) || tctx.Err() != nil {
			t.Fatalf("Put again, try %d: %v", try, err)
		}
		t.Logf("Put again, try %d: %v", try, err)
	}
	stream, err := js.Stream(ctx, "OBJ_"+DataBucket)
	if err != nil {
		t.Fatal(err)
	}
	si, err := stream.Info(ctx, jetstream.WithSubjectFilter("$O."+DataBucket+".C.>"))
	if err != nil {
		t.Fatal(err)
	}
	// The chunks of the file and of the manifest, and no others.
	want := map[string]bool{}
	for _, name := range []string{"pr-1/extract/r0/big.bin", manifestName("pr-1", "extract", "r0")} {
		info, err := s.obs.GetInfo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		want[chunkPrefix+info.NUID] = true
	}
	for subj, n := range si.State.Subjects {
		if !want[subj] {
			t.Errorf("after a failed try and a good one the bucket holds %d chunks on %s, of no object", n, subj)
		}
	}
}

// TestTransientNoStreamResponse: a chunk that no stream took (NATS back
// from a restart, its JetStream not yet) fails the store with
// jetstream.ErrNoStreamResponse, which passes on its own: the worker
// tries again rather than failing the stage.
func TestTransientNoStreamResponse(t *testing.T) {
	err := fmt.Errorf("stage extract outputs: store big.bin: %w", jetstream.ErrNoStreamResponse)
	if !transient(err) {
		t.Fatalf("transient(%v) = false, want true", err)
	}
}

// diskStager is a Stager, its bucket made, on an embedded NATS server of
// its own with its store on disk, as `gantry up` runs it; with the
// JetStream and the connection it uses.
func diskStager(tb testing.TB) (*Stager, jetstream.JetStream, *nats.Conn) {
	tb.Helper()
	ns := natstest.Start(tb, &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: tb.TempDir(), NoLog: true, NoSigs: true})
	nc := dialTest(tb, context.Background(), ConnOptions{URL: ns.ClientURL()})
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	s := NewStager(js, 0, 1)
	if err := s.EnsureBucket(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s, js, nc
}

// brokenReader gives n bytes, then fails.
type brokenReader struct{ n int }

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk gone")
	}
	k := min(len(p), r.n)
	r.n -= k
	clear(p[:k])
	return k, nil
}

// TestStagerPurgesAFailedStoresLateChunks: a store that fails purges its
// chunks and, though that purge went through, leaves their subject for
// the next store to purge again once its own chunks are stored: a chunk
// sent as NATS went away can be stored after the purge (CI: one stayed,
// of no object, until the bucket's TTL).
func TestStagerPurgesAFailedStoresLateChunks(t *testing.T) {
	ctx := context.Background()
	s, js, _ := diskStager(t)
	meta := jetstream.ObjectMeta{Name: stagePrefix("pr-1", "extract") + "r0/big.bin"}
	if err := putObject(ctx, js, s.obs, s.stream, meta, &brokenReader{n: 3 * chunkSize}, s.keepLeftover); err == nil {
		t.Fatal("a store whose file failed to read succeeded")
	}
	s.mu.Lock()
	left := slices.Clone(s.leftover)
	s.mu.Unlock()
	if len(left) != 1 || !strings.HasPrefix(left[0], chunkPrefix) {
		t.Fatalf("leftover %q after a failed store, want its chunks' subject", left)
	}
	// A late chunk of the failed store, stored after its purge.
	if _, err := js.Publish(ctx, left[0], []byte("late")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "pr-1", "extract", "r0", 1, writeZeros(t, 2*chunkSize)); err != nil {
		t.Fatal(err)
	}
	si, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(left[0]))
	if err != nil {
		t.Fatal(err)
	}
	if n := si.State.Subjects[left[0]]; n != 0 {
		t.Errorf("the failed store's late chunk stayed after the next store: %d on %s", n, left[0])
	}
}
