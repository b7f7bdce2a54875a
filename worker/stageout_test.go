package worker

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
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/natstest"
)

// TestStageOutOutlivesANATSRestart: a stage that succeeded was failed
// ("its /gantry/out could not be stored") when NATS restarted while its
// outputs were stored; the worker now stores them again once NATS is back.
// The JetStream default timeout is cut to 500 ms so that a server down for
// 1.5 s fails the first try whatever its timing.
func TestStageOutOutlivesANATSRestart(t *testing.T) {
	for _, c := range []struct {
		name string
		// duringUpload stops NATS once the upload's first chunk reached
		// it, not before the upload.
		duringUpload bool
	}{{"stopped before the upload", false}, {"stopped during the upload", true}} {
		t.Run(c.name, func(t *testing.T) {
			srv := natstest.StartRestartable(t)
			ctx := context.Background()
			nc, err := queue.Dial(ctx, queue.ConnOptions{URL: srv.URL, Reconnect: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(500*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			stager := queue.NewStager(js, 0, 1)
			if err := stager.EnsureBucket(ctx); err != nil {
				t.Fatal(err)
			}
			logs := &syncBuffer{}
			w := New("w1", "c", nil, nil, nil, WithStager(stager, t.TempDir()), WithLogger(zerolog.New(logs)))
			job := jobs.Job{RunID: "r1", Attempt: 1, Spec: jobs.RunSpec{Stage: &jobs.StageContext{PipelineRunID: "pr-1", Stage: "transform"}}}
			task := &Task{}
			st, err := w.stageIn(ctx, job, task)
			if err != nil {
				t.Fatal(err)
			}
			const size = 64 << 20
			f, err := os.Create(filepath.Join(task.Binds[1].HostPath, "big.bin"))
			if err != nil {
				t.Fatal(err)
			}
			want := sha256.New()
			if _, err := io.CopyN(io.MultiWriter(f, want), rand.NewChaCha8([32]byte{3}), size); err != nil {
				t.Fatal(err)
			}
			f.Close()

			if c.duringUpload {
				// A second connection sees the first chunk arrive.
				watch, err := nats.Connect(srv.URL, nats.NoReconnect())
				if err != nil {
					t.Fatal(err)
				}
				var once sync.Once
				if _, err := watch.Subscribe("$O."+queue.DataBucket+".C.>", func(*nats.Msg) {
					once.Do(func() { srv.RestartAfter(1500 * time.Millisecond) }) // not after the test
				}); err != nil {
					t.Fatal(err)
				}
				if err := watch.Flush(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(watch.Close)
			} else {
				srv.RestartAfter(1500 * time.Millisecond)
			}
			ev := w.stageOut(ctx, st, "r1", jobs.Event{Status: jobs.StatusSucceeded})
			w.bg.Wait()
			if ev.Status != jobs.StatusSucceeded {
				t.Fatalf("after a NATS restart: %s %s: %s\nlogs:\n%s", ev.Status, ev.StopCode, ev.StoppedReason, logs)
			}
			if !c.duringUpload && !strings.Contains(logs.String(), "trying again") {
				t.Errorf("no retry logged:\n%s", logs)
			}
			in := t.TempDir()
			if err := stager.Get(ctx, "pr-1", "transform", []string{"r1"}, in); err != nil {
				t.Fatal(err)
			}
			g, err := os.Open(filepath.Join(in, "big.bin"))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			got := sha256.New()
			n, _ := io.Copy(got, g)
			if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
				t.Fatalf("read back %d of %d bytes, same hash: %v", n, size, bytes.Equal(got.Sum(nil), want.Sum(nil)))
			}
		})
	}
}

// unavailable is a Stager's error that may pass on its own.
type unavailable struct{}

func (unavailable) Error() string   { return "nats: server is disconnected" }
func (unavailable) Transient() bool { return true }

// flakyPutStager fails its first Puts with unavailable, calling
// onFail after each.
type flakyPutStager struct {
	*memStager
	fails  int
	puts   int
	onFail func()
}

func (s *flakyPutStager) Put(ctx context.Context, pr, stage, runID string, attempt int, dir string) error {
	s.puts++
	if s.fails > 0 {
		s.fails--
		if s.onFail != nil {
			s.onFail()
		}
		return fmt.Errorf("stage %s outputs: store big.bin: %w", stage, unavailable{})
	}
	return s.memStager.Put(ctx, pr, stage, runID, attempt, dir)
}

// TestStageOutRetries: a Put that fails with an error the Stager calls
// transient is tried again until it works; one that does not fails the
// attempt at once; a later attempt taking over between tries stops them,
// leaving its files; a worker shutting down stops them too.
func TestStageOutRetries(t *testing.T) {
	job := jobs.Job{RunID: "r3", Attempt: 1, Spec: jobs.RunSpec{Stage: &jobs.StageContext{PipelineRunID: "pr-1", Stage: "transform"}}}
	out := func(t *testing.T, w *Worker, ctx context.Context) jobs.Event {
		t.Helper()
		task := &Task{}
		st, err := w.stageIn(context.Background(), job, task)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(task.Binds[1].HostPath, "clean.csv"), []byte("from attempt 1\n"), 0o644)
		ev := w.stageOut(ctx, st, "r3", jobs.Event{Status: jobs.StatusSucceeded})
		w.bg.Wait()
		return ev
	}

	t.Run("transient, then stored", func(t *testing.T) {
		m := &flakyPutStager{memStager: &memStager{files: map[string]map[string]string{}}, fails: 2}
		logs := &syncBuffer{}
		w := New("w1", "c", nil, nil, nil, WithStager(m, t.TempDir()), WithLogger(zerolog.New(logs)))
		if ev := out(t, w, context.Background()); ev.Status != jobs.StatusSucceeded || m.puts != 3 {
			t.Fatalf("%+v after %d puts, want SUCCEEDED after 3", ev, m.puts)
		}
		if got := m.files["pr-1/transform/r3"]["clean.csv"]; got != "from attempt 1\n" {
			t.Errorf("stored %q", got)
		}
		if n := strings.Count(logs.String(), "trying again"); n != 2 {
			t.Errorf("%d retries logged, want 2:\n%s", n, logs)
		}
	})
	t.Run("not transient", func(t *testing.T) {
		m := &memStager{files: map[string]map[string]string{}, fail: &os.PathError{Op: "open", Path: "/gantry/out/big.bin", Err: os.ErrPermission}}
		w := New("w1", "c", nil, nil, nil, WithStager(m, t.TempDir()))
		ev := out(t, w, context.Background())
		if want := "the task succeeded but its /gantry/out could not be stored: open /gantry/out/big.bin: permission denied"; ev.Status != jobs.StatusFailed || ev.StoppedReason != want {
			t.Fatalf("%s %q, want FAILED %q", ev.Status, ev.StoppedReason, want)
		}
	})
	t.Run("a later attempt took over between tries", func(t *testing.T) {
		cl := &memClaims{data: map[string][]byte{"r3": []byte(`{"attempt":1,"worker":"w1","time":"2026-12-05T20:00:00Z"}`)}, rev: map[string]uint64{"r3": 1}}
		m := &flakyPutStager{memStager: &memStager{files: map[string]map[string]string{"pr-1/transform/r3": {"clean.csv": "from attempt 2\n"}}}, fails: 5}
		m.onFail = func() { cl.data["r3"] = []byte(`{"attempt":2,"worker":"w2","time":"2026-12-05T20:00:01Z"}`) }
		w := New("w1", "c", nil, nil, nil, WithStager(m, t.TempDir()), WithClaims(cl))
		if ev := out(t, w, context.Background()); ev.Status != jobs.StatusSucceeded || m.puts != 1 {
			t.Fatalf("%+v after %d puts, want its end as it was after 1", ev, m.puts)
		}
		if got := m.files["pr-1/transform/r3"]["clean.csv"]; got != "from attempt 2\n" {
			t.Errorf("the later attempt's clean.csv is now %q", got)
		}
	})
	t.Run("the worker stops", func(t *testing.T) {
		m := &flakyPutStager{memStager: &memStager{files: map[string]map[string]string{}}, fails: 1000}
		ctx, cancel := context.WithCancelCause(context.Background())
		m.onFail = func() { cancel(errors.New("worker shut down")) }
		w := New("w1", "c", nil, nil, nil, WithStager(m, t.TempDir()))
		ev := out(t, w, ctx)
		if want := "the task succeeded but its /gantry/out could not be stored: stage transform outputs: store big.bin: nats: server is disconnected (stopped trying: worker shut down)"; ev.Status != jobs.StatusFailed || ev.StoppedReason != want {
			t.Fatalf("%s %q, want FAILED %q", ev.Status, ev.StoppedReason, want)
		}
	})
}

// TestStageOutGivesUp: NATS unavailable for longer than the retry window
// (a minute, plus a second per MiB of the outputs: 3 MiB here) fails the
// attempt, saying how long the worker tried.
func TestStageOutGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &flakyPutStager{memStager: &memStager{files: map[string]map[string]string{}}, fails: 1 << 30}
		w := New("w1", "c", nil, nil, nil, WithStager(m, t.TempDir()))
		job := jobs.Job{RunID: "r3", Attempt: 1, Spec: jobs.RunSpec{Stage: &jobs.StageContext{PipelineRunID: "pr-1", Stage: "transform"}}}
		task := &Task{}
		st, err := w.stageIn(context.Background(), job, task)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(task.Binds[1].HostPath, "big.bin"), make([]byte, 3<<20), 0o644)
		start := time.Now()
		ev := w.stageOut(context.Background(), st, "r3", jobs.Event{Status: jobs.StatusSucceeded})
		w.bg.Wait()
		took := time.Since(start)
		// Waits of 0.25, 0.5, 1, 2 s, then 4 s: the 20th try, at
		// 63.75 s, is the first after 63 s.
		want := "the task succeeded but its /gantry/out could not be stored: stage transform outputs: store big.bin: " +
			"nats: server is disconnected (gave up after 20 tries over 1m4s)"
		if ev.Status != jobs.StatusFailed || ev.StoppedReason != want || took < 63*time.Second || took > 68*time.Second {
			t.Fatalf("after %s: %s %q, want FAILED %q", took, ev.Status, ev.StoppedReason, want)
		}
	})
}
