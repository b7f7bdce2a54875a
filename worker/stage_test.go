package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// memStager keeps stage outputs in memory: pipelineRun/stage/run → files.
type memStager struct {
	files map[string]map[string]string
	fail  error
}

func (m *memStager) Get(_ context.Context, pr, stage string, runIDs []string, dir string) error {
	for _, id := range runIDs {
		for name, body := range m.files[pr+"/"+stage+"/"+id] {
			os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
			os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
		}
	}
	return nil
}

func (m *memStager) Put(_ context.Context, pr, stage, runID string, _ int, dir string) error {
	if m.fail != nil {
		return m.fail
	}
	got := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			got[rel] = string(b)
		}
		return nil
	})
	m.files[pr+"/"+stage+"/"+runID] = got
	return nil
}

func TestStageInAndOut(t *testing.T) {
	m := &memStager{files: map[string]map[string]string{
		"pr-1/extract/r1": {"shard-0.csv": "a\n"},
		"pr-1/extract/r2": {"shard-1.csv": "b\n", "outputs.env": "# counts\nTOTAL=42\nexport NAME='x y'\n"},
	}}
	w := New("w", "c", nil, nil, nil, WithStager(m, t.TempDir()))
	job := jobs.Job{RunID: "r3", Attempt: 1, Spec: jobs.RunSpec{Stage: &jobs.StageContext{PipelineRunID: "pr-1", Stage: "transform",
		Upstream: []string{"extract"}, UpstreamRuns: map[string][]string{"extract": {"r1", "r2"}}}}}
	task := &Task{}
	st, err := w.stageIn(context.Background(), job, task)
	if err != nil {
		t.Fatal(err)
	}
	if len(task.Binds) != 2 || task.Binds[0].ContainerPath != StageInPath || !task.Binds[0].ReadOnly || task.Binds[1].ContainerPath != StageOutPath {
		t.Fatalf("binds %+v", task.Binds)
	}
	for _, f := range []string{"extract/shard-0.csv", "extract/shard-1.csv"} {
		if _, err := os.Stat(filepath.Join(task.Binds[0].HostPath, f)); err != nil {
			t.Errorf("input %s: %v", f, err)
		}
	}
	env := map[string]string{}
	for _, kv := range task.Env {
		env[kv.Name] = kv.Value
	}
	if env["EXTRACT_TOTAL"] != "42" || env["EXTRACT_NAME"] != "x y" {
		t.Fatalf("env %v", env)
	}
	os.WriteFile(filepath.Join(task.Binds[1].HostPath, "clean.csv"), []byte("c\n"), 0o644)
	ev := w.stageOut(context.Background(), st, "r3", jobs.Event{Status: jobs.StatusSucceeded})
	if ev.Status != jobs.StatusSucceeded || m.files["pr-1/transform/r3"]["clean.csv"] != "c\n" {
		t.Fatalf("stage out: %+v %v", ev, m.files["pr-1/transform/r3"])
	}
	w.bg.Wait() // the directory goes in the background
	if _, err := os.Stat(st.dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging dir left behind: %v", err)
	}

	// An upload that fails fails the attempt; a failed attempt uploads nothing.
	m.fail = errors.New("object store down")
	st, _ = w.stageIn(context.Background(), job, &Task{})
	if ev := w.stageOut(context.Background(), st, "r3", jobs.Event{Status: jobs.StatusSucceeded}); ev.Status != jobs.StatusFailed {
		t.Fatalf("failed upload: %+v", ev)
	}
	st, _ = w.stageIn(context.Background(), job, &Task{})
	if ev := w.stageOut(context.Background(), st, "r3", jobs.Event{Status: jobs.StatusFailed}); ev.Status != jobs.StatusFailed {
		t.Fatalf("failed run: %+v", ev)
	}
	// Runs outside pipelines get nothing.
	if st, err := w.stageIn(context.Background(), jobs.Job{RunID: "x"}, &Task{}); st != nil || err != nil {
		t.Fatalf("plain run staged: %v %v", st, err)
	}
}

func TestReadOutputsRejectsGarbage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "outputs.env")
	os.WriteFile(p, []byte("OK=1\nnot a pair\n"), 0o644)
	if _, err := readOutputs(p); err == nil {
		t.Fatal("accepted a line without =")
	}
}

// An attempt whose worker was thought lost, ending after the run's job ran
// again as a later attempt, does not store its /gantry/out over the later
// attempt's files, which the downstream stages read.
func TestLateLostAttemptLeavesTheLaterAttemptsOutputs(t *testing.T) {
	m := &memStager{files: map[string]map[string]string{"pr-1/transform/r3": {"clean.csv": "from attempt 2\n"}}}
	cl := &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}
	w := New("w1", "c", nil, nil, nil, WithStager(m, t.TempDir()), WithClaims(cl))
	job := jobs.Job{RunID: "r3", Attempt: 1, Spec: jobs.RunSpec{Stage: &jobs.StageContext{PipelineRunID: "pr-1", Stage: "transform"}}}
	write := func(attempt int, body string) jobs.Event {
		t.Helper()
		job.Attempt = attempt
		task := &Task{}
		st, err := w.stageIn(context.Background(), job, task)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(task.Binds[1].HostPath, "clean.csv"), []byte(body), 0o644)
		return w.stageOut(context.Background(), st, "r3", jobs.Event{Status: jobs.StatusSucceeded})
	}

	cl.data["r3"], cl.rev["r3"] = []byte(`{"attempt":2,"worker":"w2","time":"2026-12-05T20:00:00Z"}`), 1
	if ev := write(1, "from attempt 1\n"); ev.Status != jobs.StatusSucceeded {
		t.Fatalf("late attempt's end: %+v", ev)
	}
	if got := m.files["pr-1/transform/r3"]["clean.csv"]; got != "from attempt 2\n" {
		t.Fatalf("after the late attempt 1 ended, the run's clean.csv is %q", got)
	}
	// The claim's own attempt stores its files.
	cl.data["r3"] = []byte(`{"attempt":2,"worker":"w1","time":"2026-12-05T20:00:00Z"}`)
	write(2, "again from attempt 2\n")
	if got := m.files["pr-1/transform/r3"]["clean.csv"]; got != "again from attempt 2\n" {
		t.Fatalf("the current attempt's clean.csv was not stored: %q", got)
	}
	w.bg.Wait()
}

// slowStager times out its first reads, as the object store's reads do
// while NATS restarts, leaving a partial file behind each time.
type slowStager struct {
	*memStager
	timeouts int
	err      error // returned instead, when set
}

func (s *slowStager) Get(ctx context.Context, pr, stage string, runIDs []string, dir string) error {
	if s.err != nil {
		return s.err
	}
	if s.timeouts > 0 {
		s.timeouts--
		os.WriteFile(filepath.Join(dir, "partial"), []byte("x"), 0o644)
		return fmt.Errorf("stage %s inputs: manifest of run %s: %w", stage, runIDs[0], context.DeadlineExceeded)
	}
	return s.memStager.Get(ctx, pr, stage, runIDs, dir)
}

// TestStageInRetriesATimedOutRead: a read of an upstream stage's files
// that timed out (NATS down for a second) failed the attempt as
// TaskFailedToStart; it is tried again, from an empty directory, while
// other errors still fail it at once.
func TestStageInRetriesATimedOutRead(t *testing.T) {
	m := &slowStager{memStager: &memStager{files: map[string]map[string]string{
		"pr-1/extract/r1": {"shard-0.csv": "a\n"},
	}}, timeouts: 2}
	w := New("w", "c", nil, nil, nil, WithStager(m, t.TempDir()))
	job := jobs.Job{RunID: "r3", Attempt: 1, Spec: jobs.RunSpec{Stage: &jobs.StageContext{PipelineRunID: "pr-1", Stage: "transform",
		Upstream: []string{"extract"}, UpstreamRuns: map[string][]string{"extract": {"r1"}}}}}
	task := &Task{}
	if _, err := w.stageIn(context.Background(), job, task); err != nil {
		t.Fatalf("two timed-out reads, then one that works: %v", err)
	}
	in := filepath.Join(task.Binds[0].HostPath, "extract")
	if _, err := os.Stat(filepath.Join(in, "shard-0.csv")); err != nil {
		t.Errorf("input: %v", err)
	}
	if _, err := os.Stat(filepath.Join(in, "partial")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a timed-out try's file left in the inputs: %v", err)
	}

	m.err = errors.New("manifest: not a list")
	if _, err := w.stageIn(context.Background(), job, &Task{}); err == nil || !strings.Contains(err.Error(), "not a list") {
		t.Errorf("another error: %v, want it at once", err)
	}
}
