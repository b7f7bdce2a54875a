package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// retryYAML: a sequential array, each child waiting for the one before.
const retryYAML = `
name: seq
stages:
  - {name: a, taskDefinition: t, arraySize: 4, arrayOrder: sequential}
  - {name: after, taskDefinition: t, dependsOn: [a], triggerRule: allDone}
`

// advanceWithin runs fn, an advance, and fails the test if it has not
// returned within a minute: a deadlock, not a slow machine.
func advanceWithin(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s did not return within a minute: deadlocked (RunChanged called back under the lock of the advance that called the runner?)", what)
	}
}

// TestDAGStopUnderLockTellsAfter: an advance whose stage fails its start
// stops the children it submitted, and a stop that fails a child waiting
// for the stopped one (one of a previous advance that failed after it
// submitted more children than this one found) makes the server tell the
// DAG, with the context the advance gave it, while the advance holds its
// lock. Before the fix, RunChanged waited for that lock for ever; now it
// notes the run and the advance's unlock advances it.
func TestDAGStopUnderLockTellsAfter(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	f.stopTells = d
	submits := 0
	f.beforeSubmit = func(req *jobs.SubmitRequest) {
		submits++
		switch {
		case submits == 3: // a[2], first try: a store error, a[0] and a[1] stored
			f.mu.Lock()
			f.failSubmits = 1
			f.mu.Unlock()
		case submits == 5: // a[1], retried: refused (its task definition gone)
			req.TaskDefinition = []byte(`"missing"`)
		}
	}
	p, err := jobs.ParsePipeline([]byte(retryYAML))
	if err != nil {
		t.Fatal(err)
	}
	f.prs["pr-1"] = NewPipelineRun(p, "pr-1", nil, time.Now())
	if _, err := d.Advance(context.Background(), "pr-1"); err == nil {
		t.Fatal("first advance: want the store error")
	}
	if runs := f.stageRuns("a"); len(runs) != 2 {
		t.Fatalf("a's runs after the failed advance: %v, want a[0] and a[1]", runs)
	}
	advanceWithin(t, "Retry", func() { d.Retry(context.Background()) })
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	a := pr.StageState("a")
	if a.Status != jobs.StatusFailed || len(a.Runs) != 1 || a.Runs[0].Status != jobs.StatusCanceled {
		t.Fatalf("a %s %q with runs %+v, want FAILED with a[0] CANCELED", a.Status, a.Reason, a.Runs)
	}
	// a[1], failed by a[0]'s stop, was told after the advance: the
	// pipeline run is not stuck on it, and it is not a stage run it
	// records (the retry never found it).
	if pr.Status != jobs.StatusRunning || pr.StageState("after").Status != jobs.StatusRunning {
		t.Errorf("pipeline run %s, after %s; want RUNNING, RUNNING (allDone after a FAILED)", pr.Status, pr.StageState("after").Status)
	}
	if r, _ := f.GetRun(context.Background(), f.stageRuns("a")[1]); r.Status != jobs.StatusFailed {
		t.Errorf("a[1] %s, want FAILED by its dependency's stop", r.Status)
	}
	if len(d.failed) != 0 {
		t.Errorf("advances still failing: %v", d.failed)
	}
}

// TestDAGFailedStartRecordsStops: a stage whose start fails records its
// stopped runs as they stand after the stop: CANCELED at once when
// queued, and, for one a worker held, CANCELED when it ends, though the
// pipeline run ended meanwhile. Before the fix they stayed as submitted
// (QUEUED), since only running stages were brought up to date.
func TestDAGFailedStartRecordsStops(t *testing.T) {
	const src = `
name: two
stages:
  - {name: a, taskDefinition: t, arraySize: 3}
`
	f := newFake()
	d := NewDAG(f, f, f)
	f.workerStops = true
	f.beforeSubmit = func(req *jobs.SubmitRequest) {
		switch {
		case at(req, "a", 1):
			// a[0] taken by a worker as a[1] is submitted.
			f.mu.Lock()
			f.runs[f.order[0]].Status = jobs.StatusRunning
			f.mu.Unlock()
		case at(req, "a", 2):
			req.TaskDefinition = []byte(`"missing"`)
		}
	}
	pr := start(t, f, d, src, nil)
	a := pr.StageState("a")
	if pr.Status != jobs.StatusFailed || a.Status != jobs.StatusFailed || len(a.Runs) != 2 {
		t.Fatalf("pipeline run %s, a %s with %d runs; want FAILED, FAILED with 2", pr.Status, a.Status, len(a.Runs))
	}
	if a.Runs[0].Status != jobs.StatusRunning || a.Runs[1].Status != jobs.StatusCanceled {
		t.Errorf("a's runs recorded %s, %s; want RUNNING (its worker stops it), CANCELED", a.Runs[0].Status, a.Runs[1].Status)
	}
	f.end(t, d, f.stageRuns("a")[0], jobs.StatusCanceled)
	pr, _ = f.GetPipelineRun(context.Background(), "pr-1")
	if got := pr.StageState("a").Runs[0]; got.Status != jobs.StatusCanceled || got.StoppedReason == "" {
		t.Errorf("a[0] recorded %s %q once its worker stopped it, want CANCELED with the stop's reason", got.Status, got.StoppedReason)
	}
	if pr.Status != jobs.StatusFailed || pr.StageState("a").Status != jobs.StatusFailed {
		t.Errorf("pipeline run %s, a %s after the record; want both still FAILED", pr.Status, pr.StageState("a").Status)
	}
}

// failingUpdates is the fake store whose next fail writes of a pipeline
// run fail, as a busy database's do.
type failingUpdates struct {
	*fake
	fail int
}

func (s *failingUpdates) UpdatePipelineRun(ctx context.Context, id string, fn func(*jobs.PipelineRun) bool) (*jobs.PipelineRun, error) {
	s.mu.Lock()
	fail := s.fail > 0
	if fail {
		s.fail--
	}
	s.mu.Unlock()
	if fail {
		return nil, errors.New("update pipeline run: database is locked")
	}
	return s.fake.UpdatePipelineRun(ctx, id, fn)
}

// TestDAGRetryRecordsAStopThatEndedAfter: the record of a stopped run
// that ends after its pipeline run did (its stage's start failed), whose
// write failed, is made by the DAG's Retry. Before the fix Retry found the
// pipeline run ended and dropped it from the advances to retry, the run
// recorded RUNNING for good.
func TestDAGRetryRecordsAStopThatEndedAfter(t *testing.T) {
	const src = `
name: two
stages:
  - {name: a, taskDefinition: t, arraySize: 2}
`
	f := newFake()
	store := &failingUpdates{fake: f}
	d := NewDAG(store, f, f)
	f.workerStops = true
	f.beforeSubmit = func(req *jobs.SubmitRequest) {
		if at(req, "a", 1) {
			// a[0] taken by a worker as a[1] is refused.
			f.mu.Lock()
			f.runs[f.order[0]].Status = jobs.StatusRunning
			f.mu.Unlock()
			req.TaskDefinition = []byte(`"missing"`)
		}
	}
	pr := start(t, f, d, src, nil)
	if a := pr.StageState("a"); pr.Status != jobs.StatusFailed || len(a.Runs) != 1 || a.Runs[0].Status != jobs.StatusRunning {
		t.Fatalf("pipeline run %s, a's runs %+v; want FAILED with a[0] RUNNING (its worker stops it)", pr.Status, a.Runs)
	}
	store.mu.Lock()
	store.fail = 1
	store.mu.Unlock()
	f.end(t, d, f.stageRuns("a")[0], jobs.StatusCanceled)
	if _, ok := d.failed["pr-1"]; !ok {
		t.Fatalf("failed advances %v, want pr-1's, whose record could not be written", d.failed)
	}
	if n := d.Retry(context.Background()); n != 0 {
		t.Errorf("Retry: %d advances still fail, want 0", n)
	}
	pr, _ = f.GetPipelineRun(context.Background(), "pr-1")
	if got := pr.StageState("a").Runs[0]; got.Status != jobs.StatusCanceled {
		t.Errorf("a[0] recorded %s after the retry, want CANCELED", got.Status)
	}
	if pr.Status != jobs.StatusFailed || pr.StageState("a").Status != jobs.StatusFailed {
		t.Errorf("pipeline run %s, a %s; want both still FAILED", pr.Status, pr.StageState("a").Status)
	}
}
