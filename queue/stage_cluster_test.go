package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStagerReadsItsUpstreamOnAFollower: on a three-node cluster with the
// stage data bucket R3, a downstream stage whose worker is connected to a
// follower of the bucket's stream gets every file its upstream stored,
// however soon after the store it reads. A direct get may be answered by
// the follower, which applies a write after the leader acknowledged it:
// read from there, a manifest not yet applied looked like a run that
// stored nothing, and the downstream ran without its inputs.
func TestStagerReadsItsUpstreamOnAFollower(t *testing.T) {
	urls := natstest.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	leaderURL, followerURL := dataStreamNodes(t, ctx, urls)

	wnc, err := Dial(ctx, ConnOptions{URL: leaderURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wnc.Close)
	rnc, err := Dial(ctx, ConnOptions{URL: followerURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rnc.Close)
	wjs, _ := jetstream.New(wnc)
	rjs, _ := jetstream.New(rnc)
	writer, reader := NewStager(wjs, 0, 3), NewStager(rjs, 0, 0)

	// Many small files (a long manifest), one of 1 MiB, an outputs.env.
	src := t.TempDir()
	const files = 40
	for i := range files {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("part-%02d.csv", i)), []byte(strings.Repeat("x", 1000+i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "big.bin"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, jobs.StageOutputsFile), []byte("ROWS=40\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// As the worker does (putStaged, getStaged), a store that failed for
	// a cause that may pass and a read that timed out (the stream electing
	// a leader, on a busy machine) are tried again: only what a read
	// returns counts.
	put := func(run string) {
		t.Helper()
		for {
			err := writer.Put(ctx, "p1", "extract", run, 1, src)
			var tr interface{ Transient() bool }
			if err == nil {
				return
			}
			if !errors.As(err, &tr) || !tr.Transient() || ctx.Err() != nil {
				t.Fatalf("put %s: %v", run, err)
			}
			t.Logf("put %s: %v; trying again", run, err)
		}
	}
	read := func(what string, f func() error) error {
		for {
			err := f()
			if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				return err
			}
			t.Logf("%s: %v; trying again", what, err)
		}
	}
	const rounds = 30
	var misses, errs int
	for i := range rounds {
		run := "r" + strconv.Itoa(i)
		put(run)
		dst := t.TempDir()
		err := read("get "+run, func() error {
			if err := os.RemoveAll(dst); err != nil {
				return err
			}
			return reader.Get(ctx, "p1", "extract", []string{run}, dst)
		})
		if got, _ := os.ReadDir(dst); err != nil {
			t.Logf("round %d: get: %v", i, err)
			errs++
		} else if len(got) != files+2 {
			misses++
			t.Logf("round %d: got %d files, want %d", i, len(got), files+2)
		}
		// The server reads a stage's outputs.env for the next stage.
		run = "o" + strconv.Itoa(i)
		put(run)
		var values map[string]string
		err = read("outputs of "+run, func() (err error) {
			values, err = reader.StageOutputs(ctx, "p1", "extract", []string{run})
			return err
		})
		if err != nil {
			t.Logf("round %d: outputs: %v", i, err)
			errs++
		} else if values["ROWS"] != "40" {
			misses++
			t.Logf("round %d: outputs %v, want ROWS=40", i, values)
		}
	}
	if misses+errs > 0 {
		t.Errorf("%d of %d reads right after the store missed the upstream's files, %d failed", misses, 2*rounds, errs)
	}
}

// dataStreamNodes makes the stage data bucket R3 and returns the client
// URL of its stream's leader and of one of its followers.
func dataStreamNodes(t *testing.T, ctx context.Context, urls []string) (leader, follower string) {
	t.Helper()
	nc, err := Dial(ctx, ConnOptions{URL: strings.Join(urls, ",")})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	natstest.Eventually(t, ctx, "data bucket", func(ctx context.Context) error {
		return NewStager(js, 0, 3).EnsureBucket(ctx)
	})
	natstest.Eventually(t, ctx, "data stream leader", func(ctx context.Context) error {
		s, err := js.Stream(ctx, "OBJ_"+DataBucket)
		if err != nil {
			return err
		}
		ci := s.CachedInfo().Cluster
		if ci == nil || ci.Leader == "" || len(ci.Replicas) != 2 {
			return fmt.Errorf("no leader and two replicas yet: %+v", ci)
		}
		for _, r := range ci.Replicas {
			if !r.Current {
				return fmt.Errorf("replica %s not current", r.Name)
			}
		}
		i, _ := strconv.Atoi(strings.TrimPrefix(ci.Leader, "n")) // natstest names its nodes n0, n1, n2
		j, _ := strconv.Atoi(strings.TrimPrefix(ci.Replicas[0].Name, "n"))
		leader, follower = urls[i], urls[j]
		return nil
	})
	return leader, follower
}

// TestStagerUpgradesAReplicatedBucket: a replicated data bucket made as
// before (by nats.go, with direct gets) loses them when the server starts
// (EnsureBucket), and workers that opened it before go on reading and
// storing, though the direct gets they were asking for have no one to
// answer them now. An R1 bucket keeps them: its one replica is its leader.
func TestStagerUpgradesAReplicatedBucket(t *testing.T) {
	urls := natstest.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nc := dialTest(t, ctx, ConnOptions{URL: strings.Join(urls, ",")})
	js, _ := jetstream.New(nc)
	natstest.Eventually(t, ctx, "the bucket as before", func(ctx context.Context) error {
		_, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: DataBucket, Replicas: 3, Storage: jetstream.FileStorage})
		return err
	})
	allowDirect := func(want bool) {
		t.Helper()
		natstest.Eventually(t, ctx, "stream info", func(ctx context.Context) error {
			s, err := js.Stream(ctx, "OBJ_"+DataBucket)
			if err != nil {
				return err
			}
			if got := s.CachedInfo().Config.AllowDirect; got != want {
				t.Fatalf("the bucket's stream has AllowDirect %v, want %v", got, want)
			}
			return nil
		})
	}
	allowDirect(true)

	worker, other := NewStager(js, 0, 0), NewStager(js, 0, 0)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.csv"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, ctx, "put", func(ctx context.Context) error {
		return worker.Put(ctx, "p1", "extract", "r1", 1, src)
	})
	natstest.Eventually(t, ctx, "open", func(ctx context.Context) error {
		_, err := other.bucket(ctx)
		return err
	})
	natstest.Eventually(t, ctx, "server start", func(ctx context.Context) error {
		return NewStager(js, 0, 3).EnsureBucket(ctx)
	})
	allowDirect(false)
	dst := t.TempDir()
	if err := worker.Get(ctx, "p1", "extract", []string{"r1"}, dst); err != nil {
		t.Fatalf("a worker that opened the bucket before: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "a.csv")); err != nil || string(b) != "a\n" {
		t.Fatalf("a.csv: %q, %v", b, err)
	}
	// The other stores again (putObject reads the object it replaces).
	if err := other.Put(ctx, "p1", "extract", "r1", 2, src); err != nil {
		t.Fatalf("a worker that opened the bucket before stores: %v", err)
	}

	natstest.Eventually(t, ctx, "server start with --replicas 1", func(ctx context.Context) error {
		return NewStager(js, 0, 1).EnsureBucket(ctx)
	})
	allowDirect(true)
}
