package scheduler

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// outputs is the Outputs of the tests: values by "stage.KEY", as if every
// run of the stage had written them. reads counts the reads of a stage's
// outputs, each of which costs the real store two objects per run.
type outputs struct {
	mu     sync.Mutex
	values map[string]string
	err    error
	reads  int
	runIDs []string // of the last read
}

func (o *outputs) StageOutputs(_ context.Context, pipelineRun, stage string, runIDs []string) (map[string]string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reads++
	o.runIDs = slices.Clone(runIDs)
	if o.err != nil {
		return nil, o.err
	}
	kvs := map[string]string{}
	for k, v := range o.values {
		if s, key, _ := strings.Cut(k, "."); s == stage {
			kvs[key] = v
		}
	}
	return kvs, nil
}

func (o *outputs) set(key, value string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.values[key] = value
}

const dynamicETL = `
name: files
stages:
  - name: extract
    taskDefinition: extract
  - name: check
    taskDefinition: check
    dependsOn: [extract]
  - name: transform
    taskDefinition: transform
    dependsOn: [check]
    arraySize: {fromOutput: extract.FILES}
    pool: warehouse
    skipOnExitCode: [99]
  - {name: load, taskDefinition: load, dependsOn: [transform]}
  - {name: alert, taskDefinition: notify, dependsOn: [{stage: transform, condition: failure}]}
  - {name: cleanup, taskDefinition: cleanup, dependsOn: [{stage: transform, condition: complete}]}
`

// startDynamic starts dynamicETL with FILES set to files (unset if
// empty) and runs extract and check to success.
func startDynamic(t *testing.T, files string) (*fake, *outputs, *DAG) {
	t.Helper()
	f, o := newFake(), &outputs{values: map[string]string{}}
	if files != "" {
		o.set("extract.FILES", files)
	}
	d := NewDAG(f, f, f, WithOutputs(o))
	start(t, f, d, dynamicETL, nil)
	f.end(t, d, f.stageRuns("extract")[0], jobs.StatusSucceeded)
	f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
	d.decide(context.Background()) // RunDecisions' work, here and now
	return f, o, d
}

func envOf(req *jobs.SubmitRequest) map[string]string {
	env := map[string]string{}
	for _, co := range req.Overrides.ContainerOverrides {
		for _, kv := range co.Environment {
			env[kv.Name] = kv.Value
		}
	}
	return env
}

// The size comes from extract's output (a stage upstream through check),
// read once when transform starts and stored with it: 3 children, each
// with its index and the size, each taking a pool slot.
func TestDAGArraySizeFromOutput(t *testing.T) {
	f, o, d := startDynamic(t, "3")
	tr := f.stageRuns("transform")
	if len(tr) != 3 {
		t.Fatalf("transform runs %v, want 3", tr)
	}
	if o.reads != 1 || !slices.Equal(o.runIDs, f.stageRuns("extract")) {
		t.Fatalf("%d reads of runs %v", o.reads, o.runIDs)
	}
	pr := f.pipelineRun(t)
	st := pr.StageState("transform")
	if st.Status != jobs.StatusRunning || st.ArraySize == nil || *st.ArraySize != 3 || len(st.Runs) != 3 {
		t.Fatalf("transform %s size %v runs %v", st.Status, st.ArraySize, st.Runs)
	}
	for i, req := range f.reqs[2:] {
		env := envOf(req)
		idx := strconv.Itoa(i)
		if env["GANTRY_ARRAY_INDEX"] != idx || env["AWS_BATCH_JOB_ARRAY_INDEX"] != idx || env["GANTRY_ARRAY_SIZE"] != "3" ||
			req.Pool != "warehouse" || req.IdempotencyKey != "pipeline/pr-1/transform/"+idx || *st.Runs[i].ArrayIndex != i {
			t.Errorf("child %d: env %v pool %q key %q", i, env, req.Pool, req.IdempotencyKey)
		}
	}
	// Later outputs change nothing: the size was decided.
	o.set("extract.FILES", "5")
	f.end(t, d, tr[0], jobs.StatusSucceeded)
	f.end(t, d, tr[1], jobs.StatusSucceeded)
	if _, err := d.Advance(context.Background(), "pr-1"); err != nil {
		t.Fatal(err)
	}
	f.end(t, d, tr[2], jobs.StatusSucceeded)
	if len(f.stageRuns("transform")) != 3 || o.reads != 1 || len(f.stageRuns("load")) != 1 {
		t.Fatalf("transform runs %v, %d reads, load runs %v", f.stageRuns("transform"), o.reads, f.stageRuns("load"))
	}
}

// 0 files: nothing to run. The stage is SKIPPED saying so, and what
// follows goes as after any skipped stage.
func TestDAGArraySizeZeroSkips(t *testing.T) {
	f, _, d := startDynamic(t, "0")
	pr := f.pipelineRun(t)
	st := pr.StageState("transform")
	if st.Status != jobs.StatusSkipped || st.Reason != "arraySize from extract.FILES is 0: nothing to run" || len(st.Runs) != 0 ||
		len(f.stageRuns("transform")) != 0 || st.StartedAt == nil || st.FinishedAt == nil {
		t.Fatalf("transform %s %q runs %v", st.Status, st.Reason, f.stageRuns("transform"))
	}
	if s := statuses(pr); s["load"] != jobs.StatusSkipped || s["alert"] != jobs.StatusSkipped || s["cleanup"] != jobs.StatusRunning {
		t.Fatalf("after transform: %v", s)
	}
	f.end(t, d, f.stageRuns("cleanup")[0], jobs.StatusSucceeded)
	if pr := f.pipelineRun(t); pr.Status != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s: %v", pr.Status, statuses(pr))
	}
}

// A size that cannot be read fails the stage at its start, no run
// submitted, the reason naming the output and its value.
func TestDAGArraySizeBadValues(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		err         error
		reason      string
	}{
		{"missing", "", nil, "arraySize: extract.FILES is not set: no run of stage extract wrote a FILES= line to /gantry/out/outputs.env"},
		{"not a number", "abc", nil, `arraySize: extract.FILES is "abc": want an integer 0..10000`},
		{"negative", "-2", nil, `arraySize: extract.FILES is "-2": want an integer 0..10000`},
		{"too large", "10001", nil, `arraySize: extract.FILES is "10001": want an integer 0..10000`},
		{"bad file", "3", jobs.Invalid("stage extract: outputs.env of run run1: line 2: want KEY=VALUE"),
			"arraySize: extract.FILES: stage extract: outputs.env of run run1: line 2: want KEY=VALUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, o := newFake(), &outputs{values: map[string]string{}, err: tc.err}
			if tc.value != "" {
				o.set("extract.FILES", tc.value)
			}
			d := NewDAG(f, f, f, WithOutputs(o))
			start(t, f, d, dynamicETL, nil)
			f.end(t, d, f.stageRuns("extract")[0], jobs.StatusSucceeded)
			f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
			d.decide(context.Background())
			pr := f.pipelineRun(t)
			st := pr.StageState("transform")
			if st.Status != jobs.StatusFailed || st.Reason != tc.reason || len(f.stageRuns("transform")) != 0 || st.ArraySize != nil {
				t.Fatalf("transform %s %q size %v runs %v", st.Status, st.Reason, st.ArraySize, f.stageRuns("transform"))
			}
			if s := statuses(pr); s["load"] != jobs.StatusSkipped || s["alert"] != jobs.StatusRunning {
				t.Fatalf("after transform: %v", s)
			}
		})
	}
	t.Run("no outputs reader", func(t *testing.T) {
		f := newFake()
		d := NewDAG(f, f, f)
		start(t, f, d, dynamicETL, nil)
		f.end(t, d, f.stageRuns("extract")[0], jobs.StatusSucceeded)
		f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
		if st := f.pipelineRun(t).StageState("transform"); st.Status != jobs.StatusFailed {
			t.Fatalf("transform %s %q", st.Status, st.Reason)
		}
	})
}

// The store of outputs is down: the stage waits PENDING and the advance
// is tried again, the size read then.
func TestDAGArraySizeReadFails(t *testing.T) {
	f, o := newFake(), &outputs{values: map[string]string{"extract.FILES": "2"}, err: errors.New("nats: timeout")}
	d := NewDAG(f, f, f, WithOutputs(o))
	start(t, f, d, dynamicETL, nil)
	f.end(t, d, f.stageRuns("extract")[0], jobs.StatusSucceeded)
	f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
	d.decide(context.Background())
	if st := f.pipelineRun(t).StageState("transform"); st.Status != jobs.StatusPending || st.ArraySize != nil || len(d.failed) != 1 {
		t.Fatalf("transform %s %q size %v, %d runs failing", st.Status, st.Reason, st.ArraySize, len(d.failed))
	}
	o.mu.Lock()
	o.err = nil
	o.mu.Unlock()
	if n := d.Retry(context.Background()); n != 0 { // asks for the read again
		t.Fatalf("%d still failing", n)
	}
	d.decide(context.Background())
	if tr := f.stageRuns("transform"); len(tr) != 2 {
		t.Fatalf("transform runs %v", tr)
	}
}

// failingRunner submits ok runs, then fails as a store error would.
type failingRunner struct {
	*fake
	ok int
}

func (r *failingRunner) Submit(ctx context.Context, req *jobs.SubmitRequest) (*jobs.Run, error) {
	if r.ok == 0 {
		return nil, errors.New("store run: database is locked")
	}
	r.ok--
	return r.fake.Submit(ctx, req)
}

// The server dies mid-fan-out (here: the third child's submission fails
// as a store error would, which leaves the advance unstored as a crash
// would): the size was stored before the first child, so the next advance
// (a new DAG: a restarted server) submits the same children, finding
// those it had, even though the output now says otherwise.
func TestDAGArraySizeDecidedOnce(t *testing.T) {
	f, o := newFake(), &outputs{values: map[string]string{"extract.FILES": "3"}}
	d := NewDAG(f, &failingRunner{fake: f, ok: 4}, f, WithOutputs(o)) // extract, check, 2 children
	start(t, f, d, dynamicETL, nil)
	f.end(t, d, f.stageRuns("extract")[0], jobs.StatusSucceeded)
	f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
	d.decide(context.Background())
	st := f.pipelineRun(t).StageState("transform")
	if st.Status != jobs.StatusPending || st.ArraySize == nil || *st.ArraySize != 3 || len(f.stageRuns("transform")) != 2 {
		t.Fatalf("after the failed advance: transform %s size %v, runs %v", st.Status, st.ArraySize, f.stageRuns("transform"))
	}
	o.set("extract.FILES", "7")
	restarted := NewDAG(f, f, f, WithOutputs(o))
	pr, err := restarted.Advance(context.Background(), "pr-1")
	if err != nil {
		t.Fatal(err)
	}
	st = pr.StageState("transform")
	if tr := f.stageRuns("transform"); len(tr) != 3 || st.Status != jobs.StatusRunning || len(st.Runs) != 3 || o.reads != 1 {
		t.Fatalf("after restart: transform %s runs %v (%d), %d reads", st.Status, tr, len(st.Runs), o.reads)
	}
	for i, r := range st.Runs {
		if r.RunID != f.stageRuns("transform")[i] {
			t.Fatalf("child %d is %s, want %s", i, r.RunID, f.stageRuns("transform")[i])
		}
	}
}

// A retry of the pipeline run runs every child of the stage again, as a
// new try: it decides the size again, from the output as it is then.
func TestDAGArraySizeRetryDecidesAgain(t *testing.T) {
	f, o, d := startDynamic(t, "2")
	tr := f.stageRuns("transform")
	f.end(t, d, tr[0], jobs.StatusSucceeded)
	f.end(t, d, tr[1], jobs.StatusFailed)
	f.end(t, d, f.stageRuns("alert")[0], jobs.StatusSucceeded)
	f.end(t, d, f.stageRuns("cleanup")[0], jobs.StatusSucceeded)
	if pr := f.pipelineRun(t); pr.Status != jobs.StatusFailed {
		t.Fatalf("pipeline run %s: %v", pr.Status, statuses(pr))
	}
	o.set("extract.FILES", "4")
	f.mu.Lock()
	stored := f.prs["pr-1"]
	Retry(stored, RetryStages(stored), time.Now())
	f.mu.Unlock()
	if _, err := d.Advance(context.Background(), "pr-1"); err != nil {
		t.Fatal(err)
	}
	d.decide(context.Background())
	st := f.pipelineRun(t).StageState("transform")
	if st.ArraySize == nil || *st.ArraySize != 4 || len(st.Runs) != 4 || st.Try != 2 || len(st.EarlierTries) != 1 ||
		st.EarlierTries[0].ArraySize == nil || *st.EarlierTries[0].ArraySize != 2 {
		t.Fatalf("retried transform: size %v, runs %d, try %d, earlier %+v", st.ArraySize, len(st.Runs), st.Try, st.EarlierTries)
	}
	if key := f.reqs[len(f.reqs)-1].IdempotencyKey; key != "pipeline/pr-1/transform/try2/3" {
		t.Fatalf("key %q", key)
	}
}

// Every child skipping itself (skipOnExitCode) skips the stage, as for a
// fixed array.
func TestDAGArraySizeChildrenSkip(t *testing.T) {
	f, _, d := startDynamic(t, "2")
	for _, id := range f.stageRuns("transform") {
		f.exit(t, d, id, 99, jobs.StopEssentialExited)
	}
	pr := f.pipelineRun(t)
	if st := pr.StageState("transform"); st.Status != jobs.StatusSkipped || st.Reason != "2 of 2 runs exited 99 (skipOnExitCode): skipped" {
		t.Fatalf("transform %s %q", st.Status, st.Reason)
	}
}

// blockingOutputs is an Outputs whose reads wait for release.
type blockingOutputs struct {
	*outputs
	reading atomic.Int32
	release chan struct{}
}

func (b *blockingOutputs) StageOutputs(ctx context.Context, pipelineRun, stage string, runIDs []string) (map[string]string, error) {
	b.reading.Add(1)
	<-b.release
	return b.outputs.StageOutputs(ctx, pipelineRun, stage, runIDs)
}

// The read of an output (seconds for an upstream array of thousands of
// children) holds neither the advance that asks for it (the server's
// events wait on that one) nor the lock every advance takes: the stage
// waits PENDING meanwhile, and its children are submitted once the read
// is done.
func TestDAGArraySizeReadOffTheLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		o := &blockingOutputs{outputs: &outputs{values: map[string]string{"extract.FILES": "3"}}, release: make(chan struct{})}
		d := NewDAG(f, f, f, WithOutputs(o))
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { d.RunDecisions(ctx) })
		defer func() {
			cancel()
			wg.Wait()
		}()
		start(t, f, d, dynamicETL, nil)
		f.end(t, d, f.stageRuns("extract")[0], jobs.StatusSucceeded)
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
		}()
		synctest.Wait()
		select {
		case <-ended:
		default:
			close(o.release)
			t.Fatal("the advance after check's end waited for the read of extract.FILES")
		}
		if n := o.reading.Load(); n != 1 {
			t.Fatalf("%d reads under way, want 1", n)
		}
		// Another advance goes through while the read is under way, and
		// asks for no second read.
		pr, err := d.Advance(ctx, "pr-1")
		if err != nil {
			t.Fatal(err)
		}
		if st := pr.StageState("transform"); st.Status != jobs.StatusPending || len(f.stageRuns("transform")) != 0 {
			t.Fatalf("transform %s, runs %v while its size is read", st.Status, f.stageRuns("transform"))
		}
		close(o.release)
		synctest.Wait()
		st := f.pipelineRun(t).StageState("transform")
		if st.Status != jobs.StatusRunning || st.ArraySize == nil || *st.ArraySize != 3 || len(f.stageRuns("transform")) != 3 {
			t.Fatalf("after the read: transform %s size %v runs %v", st.Status, st.ArraySize, f.stageRuns("transform"))
		}
		if n := o.reading.Load(); n != 1 || len(d.wants) != 0 {
			t.Fatalf("%d reads, %d asks left", n, len(d.wants))
		}
	})
}

// A pipeline run stopped while its stage's size is read: the stage is
// CANCELED with the others, and the read, once done, submits nothing and
// is not kept.
func TestDAGArraySizeStoppedWhileRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		o := &blockingOutputs{outputs: &outputs{values: map[string]string{"extract.FILES": "3"}}, release: make(chan struct{})}
		d := NewDAG(f, f, f, WithOutputs(o))
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { d.RunDecisions(ctx) })
		defer func() {
			cancel()
			wg.Wait()
		}()
		start(t, f, d, dynamicETL, nil)
		f.end(t, d, f.stageRuns("extract")[0], jobs.StatusSucceeded)
		f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
		synctest.Wait()
		if _, err := d.Stop(ctx, "pr-1", ""); err != nil {
			close(o.release)
			t.Fatal(err)
		}
		close(o.release)
		synctest.Wait()
		pr := f.pipelineRun(t)
		if st := pr.StageState("transform"); st.Status != jobs.StatusCanceled || st.ArraySize != nil ||
			len(f.stageRuns("transform")) != 0 || pr.Status != jobs.StatusCanceled || len(d.wants) != 0 {
			t.Fatalf("pipeline run %s, transform %s size %v runs %v, %d asks left", pr.Status, st.Status, st.ArraySize,
				f.stageRuns("transform"), len(d.wants))
		}
	})
}
