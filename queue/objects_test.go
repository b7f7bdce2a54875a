package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStagerMovesFilesBetweenStages stores the outputs of two runs of an
// array stage, one of them 200 MiB, and reads them back into another
// directory, as the worker of a downstream stage does.
func TestStagerMovesFilesBetweenStages(t *testing.T) {
	q := newQueue(t)
	s := NewStager(q.JetStream(), 0, 1)
	ctx := context.Background()

	out0, out1 := t.TempDir(), t.TempDir()
	const big = 200 << 20
	f, err := os.Create(filepath.Join(out0, "shard-0.bin"))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	rng := rand.NewChaCha8([32]byte{1})
	if _, err := io.CopyN(io.MultiWriter(f, want), rng, big); err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.MkdirAll(filepath.Join(out1, "sub"), 0o755)
	os.WriteFile(filepath.Join(out1, "sub", "shard-1.csv"), []byte("a,b\n"), 0o644)
	os.WriteFile(filepath.Join(out1, "outputs.env"), []byte("TOTAL=42\n"), 0o644)

	if err := s.Put(ctx, "pr-1", "extract", "run0", 1, out0); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "pr-1", "extract", "run1", 1, out1); err != nil {
		t.Fatal(err)
	}
	in := t.TempDir()
	if err := s.Get(ctx, "pr-1", "extract", []string{"run0", "run1", "never-wrote"}, in); err != nil {
		t.Fatal(err)
	}
	g, err := os.Open(filepath.Join(in, "shard-0.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got := sha256.New()
	n, _ := io.Copy(got, g)
	if n != big || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("big file: %d bytes, hash differs: %v", n, !bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	if b, err := os.ReadFile(filepath.Join(in, "sub", "shard-1.csv")); err != nil || string(b) != "a,b\n" {
		t.Fatalf("small file: %q %v", b, err)
	}
	// Another pipeline run's stage of the same name sees nothing of it.
	other := t.TempDir()
	if err := s.Get(ctx, "pr-2", "extract", []string{"run0"}, other); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(other); len(entries) != 0 {
		t.Fatalf("pr-2 got %d files of pr-1", len(entries))
	}
}

// TestStagerEmptyOutputStoresNothing: a stage that writes nothing to
// /gantry/out costs no object store write, and its downstream reads an
// empty directory without error.
func TestStagerEmptyOutputStoresNothing(t *testing.T) {
	q := newQueue(t)
	s := NewStager(q.JetStream(), 0, 1)
	ctx := context.Background()
	if err := s.Put(ctx, "pr-1", "extract", "run0", 1, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	obs, err := s.bucket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := obs.List(ctx); err == nil && len(list) > 0 {
		t.Fatalf("an empty output stored %d objects, the first %s", len(list), list[0].Name)
	}
	in := t.TempDir()
	if err := s.Get(ctx, "pr-1", "extract", []string{"run0"}, in); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(in); len(entries) != 0 {
		t.Fatalf("got %d files", len(entries))
	}
}

// TestStagerReadsFilesLongerThanTheDefaultTimeout: a stage file that takes
// longer to read than JetStream's default timeout still arrives. nats.go
// gives a read without a deadline of its own that timeout for the whole
// object; here it is cut to 200 ms, less than reading 128 MiB takes.
func TestStagerReadsFilesLongerThanTheDefaultTimeout(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	out := t.TempDir()
	const size = 128 << 20
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{2}).Read(data)
	if err := os.WriteFile(filepath.Join(out, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := NewStager(q.JetStream(), 0, 1).Put(ctx, "pr-1", "extract", "run0", 1, out); err != nil {
		t.Fatal(err)
	}
	short, err := jetstream.New(q.nc, jetstream.WithDefaultTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	in := t.TempDir()
	start := time.Now()
	if err := NewStager(short, 0, 1).Get(ctx, "pr-1", "extract", []string{"run0"}, in); err != nil {
		t.Fatalf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	got, err := os.ReadFile(filepath.Join(in, "big.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d of %d bytes (%v), or not the same", len(got), size, err)
	}
	t.Logf("read %d MiB in %s", size>>20, time.Since(start).Round(time.Millisecond))
}

// TestStagerRetryWithoutOutputs: a retry that stores nothing leaves its
// downstream none of the files an earlier attempt of the run stored.
func TestStagerRetryWithoutOutputs(t *testing.T) {
	q := newQueue(t)
	s := NewStager(q.JetStream(), 0, 1)
	ctx := context.Background()
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "stale.csv"), []byte("from attempt 1"), 0o644)
	if err := s.Put(ctx, "pr-1", "extract", "run0", 1, out); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "pr-1", "extract", "run0", 2, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	in := t.TempDir()
	if err := s.Get(ctx, "pr-1", "extract", []string{"run0"}, in); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(in); len(entries) != 0 {
		t.Fatalf("attempt 2 stored nothing, yet %s came in", entries[0].Name())
	}
}

// TestStagerKeepsTheExecutableBit: a program one stage builds can be run
// by the next; other files are plain readable files.
func TestStagerKeepsTheExecutableBit(t *testing.T) {
	q := newQueue(t)
	s := NewStager(q.JetStream(), 0, 1)
	ctx := context.Background()
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "tool"), []byte("#!/bin/sh\necho hi\n"), 0o750)
	os.WriteFile(filepath.Join(out, "data.csv"), []byte("a,b\n"), 0o600)
	if err := s.Put(ctx, "pr-1", "build", "run0", 1, out); err != nil {
		t.Fatal(err)
	}
	in := t.TempDir()
	if err := s.Get(ctx, "pr-1", "build", []string{"run0"}, in); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"tool": 0o755, "data.csv": 0o644} {
		info, err := os.Stat(filepath.Join(in, name))
		if err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", name, info.Mode().Perm(), err, want)
		}
	}
}

// TestStagerArrayRunsSameFileName: the runs of an array stage share their
// downstream's directory. Before, a file of one name stored by two runs
// was one object, the last run's: the other's was lost without a word.
// Now the same bytes arrive once, different bytes are an error naming
// both runs, and outputs.env files are joined in the runs' order.
func TestStagerArrayRunsSameFileName(t *testing.T) {
	q := newQueue(t)
	s := NewStager(q.JetStream(), 0, 1)
	ctx := context.Background()
	put := func(run string, files map[string]string) {
		t.Helper()
		out := t.TempDir()
		for name, body := range files {
			os.WriteFile(filepath.Join(out, name), []byte(body), 0o644)
		}
		if err := s.Put(ctx, "pr-1", "extract", run, 1, out); err != nil {
			t.Fatal(err)
		}
	}
	put("r0", map[string]string{"schema.json": "{}", "part.csv": "a\n", "outputs.env": "ROWS_0=1"})
	put("r1", map[string]string{"schema.json": "{}", "part.csv": "b\n", "outputs.env": "ROWS_1=2\n"})
	put("r2", map[string]string{"schema.json": "{}", "part-2.csv": "c\n"})

	err := s.Get(ctx, "pr-1", "extract", []string{"r0", "r1", "r2"}, t.TempDir())
	var clash *StageClashError
	if !errors.As(err, &clash) || clash.File != "part.csv" || clash.Runs != [2]string{"r0", "r1"} {
		t.Fatalf("two runs wrote different part.csv: got %v, want a StageClashError naming r0 and r1", err)
	}
	t.Log(err)

	in := t.TempDir()
	if err := s.Get(ctx, "pr-1", "extract", []string{"r0", "r2"}, in); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"schema.json": "{}", "part.csv": "a\n", "part-2.csv": "c\n", "outputs.env": "ROWS_0=1"} {
		if b, err := os.ReadFile(filepath.Join(in, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", name, b, err, want)
		}
	}
	// outputs.env: every run's lines, in the runs' order.
	put("r3", map[string]string{"outputs.env": "ROWS_3=4\n"})
	in = t.TempDir()
	if err := s.Get(ctx, "pr-1", "extract", []string{"r3", "r2", "r0"}, in); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(in, "outputs.env")); string(b) != "ROWS_3=4\nROWS_0=1\n" {
		t.Errorf("joined outputs.env %q", b)
	}
}

// TestStagerReadsTheFirstLayout: files a worker of the first layout stored
// (<pipeline run>/<stage>/<path>, a manifest that is a bare list) still
// reach a stage run by a worker of this one, as during an upgrade.
func TestStagerReadsTheFirstLayout(t *testing.T) {
	q := newQueue(t)
	s := NewStager(q.JetStream(), 0, 1)
	ctx := context.Background()
	obs, err := s.bucket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "pr-1/extract/sub/old.csv", []byte("old\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, manifestName("pr-1", "extract", "r0"), []byte(`["sub/old.csv"]`)); err != nil {
		t.Fatal(err)
	}
	in := t.TempDir()
	if err := s.Get(ctx, "pr-1", "extract", []string{"r0"}, in); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(in, "sub", "old.csv")); err != nil || string(b) != "old\n" {
		t.Fatalf("old layout: %q %v", b, err)
	}
}

// TestStagerManifestReadableByTheFirstLayout: a manifest stays a JSON list
// of names under the stage's prefix, as workers of the first layout read
// it (into []string), so that during a rolling upgrade their downstream
// stages get the files, under a directory named by the run, rather than
// fail to decode it.
func TestStagerManifestReadableByTheFirstLayout(t *testing.T) {
	q := newQueue(t)
	s := NewStager(q.JetStream(), 0, 1)
	ctx := context.Background()
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "part.csv"), []byte("a\n"), 0o644)
	if err := s.Put(ctx, "pr-1", "extract", "r0", 1, out); err != nil {
		t.Fatal(err)
	}
	obs, err := s.bucket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data, err := obs.GetBytes(ctx, manifestName("pr-1", "extract", "r0"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	if err := json.Unmarshal(data, &entries); err != nil || len(entries) != 1 {
		t.Fatalf("manifest %s: %v, want a list of one name", data, err)
	}
	if b, err := obs.GetBytes(ctx, stagePrefix("pr-1", "extract")+entries[0]); err != nil || string(b) != "a\n" {
		t.Fatalf("object %s as the first layout names it: %q %v", entries[0], b, err)
	}
}

// TestStagerStageOutputs reads every key of the outputs.env the runs of a
// stage stored, as the DAG does for an arraySize or a when: in the runs'
// order, the last line setting a key winning; a run that stored nothing,
// one whose outputs.env lacks a key and a stage of another pipeline run
// count for nothing; a line that is no KEY=VALUE is the file's error, not
// the store's.
func TestStagerStageOutputs(t *testing.T) {
	q := newQueue(t)
	s := NewStager(q.JetStream(), 0, 1)
	ctx := context.Background()
	put := func(pr, stage, run string, files map[string]string) {
		t.Helper()
		dir := t.TempDir()
		for name, data := range files {
			os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
		}
		if err := s.Put(ctx, pr, stage, run, 1, dir); err != nil {
			t.Fatal(err)
		}
	}
	put("pr-1", "extract", "r0", map[string]string{"outputs.env": "# found\nFILES=2\nROWS=10"})
	put("pr-1", "extract", "r1", map[string]string{"data.csv": "a\n"})
	put("pr-1", "extract", "r2", map[string]string{"outputs.env": "export FILES=' 3'\n"})
	put("pr-1", "extract", "r3", map[string]string{"outputs.env": "OTHER=1\n"})
	put("pr-2", "extract", "r9", map[string]string{"outputs.env": "FILES=9\n"})
	runs := []string{"r0", "r1", "r2", "r3", "never-wrote"}
	kvs, err := s.StageOutputs(ctx, "pr-1", "extract", runs)
	if want := map[string]string{"FILES": " 3", "ROWS": "10", "OTHER": "1"}; err != nil || !maps.Equal(kvs, want) {
		t.Errorf("outputs: %v %v, want %v", kvs, err, want)
	}
	if kvs, err := s.StageOutputs(ctx, "pr-1", "extract", []string{"r2", "r0"}); err != nil || kvs["FILES"] != "2" {
		t.Errorf("runs r2, r0: %v %v, want the last run's FILES=2", kvs, err)
	}
	if kvs, err := s.StageOutputs(ctx, "pr-1", "extract", nil); err != nil || len(kvs) != 0 {
		t.Errorf("no runs: %v %v", kvs, err)
	}
	put("pr-1", "extract", "r4", map[string]string{"outputs.env": "FILES=1\nnot a pair\n"})
	_, err = s.StageOutputs(ctx, "pr-1", "extract", []string{"r0", "r4"})
	if jobs.ErrorCode(err) != jobs.CodeInvalidArgument || err.Error() != "stage extract: outputs.env of run r4: line 2: want KEY=VALUE" {
		t.Fatalf("bad file: %v (%s)", err, jobs.ErrorCode(err))
	}
}

// TestStagerStageOutputsReadsEachObjectOnce counts the object reads of a
// read of a stage's outputs, by the JetStream API requests that fetch an
// object's chunks (an ordered consumer each): one per run's manifest and
// one per outputs.env, 2×N for N runs, however many keys the reader wants
// of them. A when with k conditions on one upstream array read k×2×N
// objects when each key was read apart (StageOutput, before).
func TestStagerStageOutputsReadsEachObjectOnce(t *testing.T) {
	q := newQueue(t)
	s := NewStager(q.JetStream(), 0, 1)
	ctx := context.Background()
	const n = 8
	var runs []string
	for i := range n {
		id := fmt.Sprintf("r%d", i)
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, jobs.StageOutputsFile), fmt.Appendf(nil, "MODE=full\nFILES=%d\nROWS=%d\n", i, 10*i), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "pr-1", "extract", id, 1, dir); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, id)
	}
	var reads atomic.Int64
	sub, err := q.Conn().Subscribe("$JS.API.CONSUMER.CREATE.>", func(*nats.Msg) { reads.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	kvs, err := s.StageOutputs(ctx, "pr-1", "extract", runs)
	if want := map[string]string{"MODE": "full", "FILES": "7", "ROWS": "70"}; err != nil || !maps.Equal(kvs, want) {
		t.Fatalf("outputs: %v %v, want %v", kvs, err, want)
	}
	if err := q.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	// The flush has the requests here; the subscription's callback counts
	// them on its own goroutine, maybe not yet.
	for deadline := time.Now().Add(2 * time.Second); reads.Load() < 2*n && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := reads.Load(); got != 2*n {
		t.Errorf("%d object reads for the outputs of %d runs, want %d", got, n, 2*n)
	}
}
