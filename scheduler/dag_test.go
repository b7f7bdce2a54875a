package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// fake is the store, runner and publisher of the tests: runs are created
// QUEUED and ended by the test.
type fake struct {
	mu     sync.Mutex
	prs    map[string]*jobs.PipelineRun
	runs   map[string]*jobs.Run
	keys   map[string]string
	order  []string // run ids in submission order
	reqs   []*jobs.SubmitRequest
	events int
	// failSubmits fails that many submissions as a store error would.
	failSubmits int
	// beforeSubmit, when set, sees each submission before it is made,
	// under the DAG's lock as the server's are: it may refuse it (a
	// task definition "missing") or end runs submitted before it (end
	// during a submission, which tells the DAG once the advance is over).
	beforeSubmit func(req *jobs.SubmitRequest)
	// ended are the runs ended during an advance (endDuring), told to
	// the DAG by tellEnded.
	ended []*jobs.Run
	// stopTells, when set, is told by Stop of the runs a stop failed
	// (those waiting for the stopped run), with the context Stop was
	// given, as the server's stop tells its DAG: under the lock of an
	// advance that stops runs.
	stopTells *DAG
	// workerStops: Stop leaves a run a worker took (RUNNING) running,
	// as the server does until the worker reports it stopped.
	workerStops bool
}

func newFake() *fake {
	return &fake{prs: map[string]*jobs.PipelineRun{}, runs: map[string]*jobs.Run{}, keys: map[string]string{}}
}

func clone[T any](v *T) *T {
	b, _ := json.Marshal(v)
	var out T
	json.Unmarshal(b, &out)
	return &out
}

func (f *fake) GetPipelineRun(_ context.Context, id string) (*jobs.PipelineRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pr, ok := f.prs[id]
	if !ok {
		return nil, jobs.ErrNotFound
	}
	return clone(pr), nil
}

func (f *fake) UpdatePipelineRun(_ context.Context, id string, fn func(*jobs.PipelineRun) bool) (*jobs.PipelineRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pr := clone(f.prs[id])
	if fn(pr) {
		f.prs[id] = clone(pr)
	}
	return clone(f.prs[id]), nil
}

func (f *fake) GetRun(_ context.Context, id string) (*jobs.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return clone(f.runs[id]), nil
}

func (f *fake) Submit(_ context.Context, req *jobs.SubmitRequest) (*jobs.Run, error) {
	if f.beforeSubmit != nil {
		f.beforeSubmit(req)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, _, err := req.TaskRef(); err != nil {
		return nil, err
	}
	if f.failSubmits > 0 {
		f.failSubmits--
		return nil, errors.New("store run: database is locked")
	}
	var ref string
	if json.Unmarshal(req.TaskDefinition, &ref) == nil && ref == "missing" {
		return nil, jobs.NotFound("task definition missing: not registered")
	}
	if id, ok := f.keys[req.IdempotencyKey]; ok {
		return clone(f.runs[id]), nil
	}
	id := fmt.Sprintf("run%d", len(f.runs)+1)
	r := &jobs.Run{RunID: id, Status: jobs.StatusQueued, Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued}},
		Spec:      jobs.RunSpec{Stage: req.Stage, Overrides: req.Overrides, RetryStrategy: req.RetryStrategy},
		DependsOn: jobs.DependencyStates(req.DependsOn)}
	// Dependencies that ended are resolved at once, as the server's
	// newRun does: the run fails now if one ended as it did not need.
	r.ResolveDependencies(time.Now(), func(id string) (jobs.Status, bool) {
		dep, ok := f.runs[id]
		if !ok {
			return "", false
		}
		return dep.Status, true
	})
	f.runs[id], f.keys[req.IdempotencyKey] = r, id
	f.order = append(f.order, id)
	f.reqs = append(f.reqs, req)
	return clone(r), nil
}

func (f *fake) Stop(ctx context.Context, id, reason string) (*jobs.Run, error) {
	f.mu.Lock()
	r := f.runs[id]
	switch {
	case r.Status == jobs.StatusRunning && f.workerStops:
		r.StoppedReason = reason // the worker's CANCELED comes later (end)
	case !r.Status.Terminal():
		r.Status, r.StoppedReason = jobs.StatusCanceled, reason
	}
	var failed []*jobs.Run
	if f.stopTells != nil && r.Status.Terminal() {
		for _, wid := range f.order {
			w := f.runs[wid]
			if changed, _ := w.ResolveDependencies(time.Now(), func(dep string) (jobs.Status, bool) {
				if d, ok := f.runs[dep]; ok {
					return d.Status, true
				}
				return "", false
			}); changed && w.Status.Terminal() {
				failed = append(failed, clone(w))
			}
		}
	}
	out := clone(r)
	f.mu.Unlock()
	for _, w := range failed {
		f.stopTells.RunChanged(ctx, w)
	}
	return out, nil
}

func (f *fake) PublishPipelineRun(*jobs.PipelineRun) { f.events++ }

// end ends a run and tells the DAG, as the server's applyBatch does.
func (f *fake) end(t *testing.T, d *DAG, id string, s jobs.Status) {
	t.Helper()
	f.mu.Lock()
	r := f.runs[id]
	r.Status = s
	f.mu.Unlock()
	d.RunChanged(context.Background(), clone(r))
}

// endDuring ends a run while the DAG advances (from beforeSubmit), as a
// worker's event that the server applies while the advance submits
// runs: the DAG hears of it once the advance let go of its lock
// (tellEnded).
func (f *fake) endDuring(id string, s jobs.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.runs[id]
	r.Status = s
	f.ended = append(f.ended, clone(r))
}

// tellEnded tells the DAG of the runs endDuring ended.
func (f *fake) tellEnded(d *DAG) {
	f.mu.Lock()
	ended := f.ended
	f.ended = nil
	f.mu.Unlock()
	for _, r := range ended {
		d.RunChanged(context.Background(), r)
	}
}

// stageRuns returns the run ids of a stage, by submission order.
func (f *fake) stageRuns(stage string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range f.order {
		if f.runs[id].Spec.Stage.Stage == stage {
			out = append(out, id)
		}
	}
	return out
}

func start(t *testing.T, f *fake, d *DAG, src string, params map[string]string) *jobs.PipelineRun {
	t.Helper()
	p, err := jobs.ParsePipeline([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := p.ResolveParams(params)
	if err != nil {
		t.Fatal(err)
	}
	pr := NewPipelineRun(p, "pr-1", resolved, time.Now())
	f.prs[pr.PipelineRunID] = pr
	out, err := d.Advance(context.Background(), pr.PipelineRunID)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func statuses(pr *jobs.PipelineRun) map[string]jobs.Status { return pr.StageStatuses() }

const etl = `
name: etl
parameters: {day: "2026-01-01"}
stages:
  - name: extract
    taskDefinition: extract
    arraySize: 3
    overrides: {containerOverrides: [{name: main, environment: [{name: DAY, value: "${day}"}], command: [x, "Ref::day"]}]}
  - name: transform
    taskDefinition: transform
    dependsOn: [extract]
  - name: load
    taskDefinition: load
    dependsOn: [transform]
  - name: alert
    taskDefinition: notify
    dependsOn: [{stage: transform, condition: failure}]
  - name: cleanup
    taskDefinition: cleanup
    dependsOn: [{stage: load, condition: complete}]
`

func TestDAGRunsStagesInOrder(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	pr := start(t, f, d, etl, map[string]string{"day": "2026-11-24"})
	if pr.Status != jobs.StatusRunning || pr.StageState("extract").Status != jobs.StatusRunning || len(f.stageRuns("extract")) != 3 {
		t.Fatalf("after start: %v, %d extract runs", statuses(pr), len(f.stageRuns("extract")))
	}
	// Each child sees its index, the parameters substituted and the
	// pipeline's variables.
	req := f.reqs[1]
	env := map[string]string{}
	for _, co := range req.Overrides.ContainerOverrides {
		for _, kv := range co.Environment {
			env[kv.Name] = kv.Value
		}
	}
	want := map[string]string{"DAY": "2026-11-24", "GANTRY_PIPELINE_RUN_ID": "pr-1", "GANTRY_STAGE": "extract",
		"GANTRY_ARRAY_INDEX": "1", "AWS_BATCH_JOB_ARRAY_INDEX": "1"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if cmd := req.Overrides.ContainerOverrides[0].Command; !slices.Equal(cmd, []string{"x", "2026-11-24"}) {
		t.Errorf("command %v", cmd)
	}
	if req.IdempotencyKey != "pipeline/pr-1/extract/1" || len(req.Stage.Upstream) != 0 {
		t.Errorf("key %q upstream %v", req.IdempotencyKey, req.Stage.Upstream)
	}
	// for the server to fill the registered definition's Ref::day
	if req.Stage.Parameters["day"] != "2026-11-24" {
		t.Errorf("stage parameters %v", req.Stage.Parameters)
	}
	ext := f.stageRuns("extract")
	f.end(t, d, ext[0], jobs.StatusSucceeded)
	f.end(t, d, ext[1], jobs.StatusSucceeded)
	if got := f.stageRuns("transform"); len(got) != 0 {
		t.Fatal("transform started before every extract child ended")
	}
	f.end(t, d, ext[2], jobs.StatusSucceeded)
	tr := f.stageRuns("transform")
	if len(tr) != 1 {
		t.Fatalf("transform runs %v", tr)
	}
	f.end(t, d, tr[0], jobs.StatusSucceeded)
	f.end(t, d, f.stageRuns("load")[0], jobs.StatusSucceeded)
	pr, _ = f.GetPipelineRun(context.Background(), "pr-1")
	if s := statuses(pr); s["alert"] != jobs.StatusSkipped || s["cleanup"] != jobs.StatusRunning {
		t.Fatalf("after load: %v", s)
	}
	f.end(t, d, f.stageRuns("cleanup")[0], jobs.StatusSucceeded)
	pr, _ = f.GetPipelineRun(context.Background(), "pr-1")
	if pr.Status != jobs.StatusSucceeded || pr.FinishedAt == nil {
		t.Fatalf("pipeline run %s: %v", pr.Status, statuses(pr))
	}
	// Advancing again, as after a restart, starts nothing.
	n := len(f.order)
	if _, err := d.Advance(context.Background(), "pr-1"); err != nil || len(f.order) != n {
		t.Fatalf("advance after the end: %v, %d new runs", err, len(f.order)-n)
	}
}

func TestDAGFailureConditionsAndSkips(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, etl, nil)
	for _, id := range f.stageRuns("extract") {
		f.end(t, d, id, jobs.StatusSucceeded)
	}
	f.end(t, d, f.stageRuns("transform")[0], jobs.StatusFailed)
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	s := statuses(pr)
	// load is skipped; cleanup (complete on load) runs since skipped is complete.
	if s["load"] != jobs.StatusSkipped || s["alert"] != jobs.StatusRunning || s["cleanup"] != jobs.StatusRunning {
		t.Fatalf("after transform failed: %v", s)
	}
	if r := pr.StageState("load").Reason; r == "" {
		t.Error("skipped stage has no reason")
	}
	f.end(t, d, f.stageRuns("alert")[0], jobs.StatusSucceeded)
	f.end(t, d, f.stageRuns("cleanup")[0], jobs.StatusSucceeded)
	pr, _ = f.GetPipelineRun(context.Background(), "pr-1")
	if pr.Status != jobs.StatusFailed {
		t.Fatalf("pipeline run with a failed stage ended %s", pr.Status)
	}
}

func TestDAGArrayChildFailureFailsStage(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, etl, nil)
	ext := f.stageRuns("extract")
	f.end(t, d, ext[0], jobs.StatusFailed)
	f.end(t, d, ext[1], jobs.StatusSucceeded)
	f.end(t, d, ext[2], jobs.StatusSucceeded)
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	if st := pr.StageState("extract"); st.Status != jobs.StatusFailed || st.Reason != "1 of 3 runs failed" {
		t.Fatalf("extract %s %q", st.Status, st.Reason)
	}
	if s := statuses(pr); s["transform"] != jobs.StatusSkipped || s["alert"] != jobs.StatusSkipped || s["load"] != jobs.StatusSkipped {
		t.Fatalf("downstream of a failed extract: %v", s)
	}
}

// TestDAGStageRunsKeepTheirOwnReasons: a stage's runs carry each its own
// stopped reason, kept as other runs of the stage end; describe showed
// only the stage's ("1 of 3 runs failed").
func TestDAGStageRunsKeepTheirOwnReasons(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, etl, nil)
	ext := f.stageRuns("extract")
	f.mu.Lock()
	f.runs[ext[0]].StoppedReason = "Essential container in task exited"
	f.runs[ext[1]].StoppedReason = "OutOfMemoryError: container killed"
	f.mu.Unlock()
	f.end(t, d, ext[0], jobs.StatusSucceeded)
	f.end(t, d, ext[1], jobs.StatusFailed)
	f.end(t, d, ext[2], jobs.StatusSucceeded)
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	var got []string
	for _, r := range pr.StageState("extract").Runs {
		got = append(got, r.StoppedReason)
	}
	if want := []string{"Essential container in task exited", "OutOfMemoryError: container killed", ""}; !slices.Equal(got, want) {
		t.Fatalf("stage runs' reasons %q, want %q", got, want)
	}
}

func TestDAGStopCancelsRunningAndPending(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, etl, nil)
	pr, err := d.Stop(context.Background(), "pr-1", "enough")
	if err != nil {
		t.Fatal(err)
	}
	if pr.Status != jobs.StatusCanceled || pr.StageState("extract").Status != jobs.StatusCanceled ||
		pr.StageState("load").Status != jobs.StatusCanceled {
		t.Fatalf("after stop: %s %v", pr.Status, statuses(pr))
	}
	for _, id := range f.stageRuns("extract") {
		if r, _ := f.GetRun(context.Background(), id); r.Status != jobs.StatusCanceled {
			t.Errorf("run %s is %s", id, r.Status)
		}
	}
	if len(f.stageRuns("transform")) != 0 {
		t.Fatal("a stage started after the stop")
	}
}

func TestDAGUnknownTaskDefinitionFailsStage(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	pr := start(t, f, d, "name: p\nstages: [{name: a, taskDefinition: missing}, {name: b, taskDefinition: t, dependsOn: [a]}]\n", nil)
	if pr.Status != jobs.StatusFailed || pr.StageState("a").Status != jobs.StatusFailed || pr.StageState("b").Status != jobs.StatusSkipped {
		t.Fatalf("%s %v %q", pr.Status, statuses(pr), pr.StageState("a").Reason)
	}
}

// TestDAGResumesAfterCrash loses the advance that should follow a stage's
// end, as a crash between applying the event and advancing would, and
// checks that the next Advance (the server's start) picks it up without
// running the finished stage again.
func TestDAGResumesAfterCrash(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, etl, nil)
	for _, id := range f.stageRuns("extract") {
		f.mu.Lock()
		f.runs[id].Status = jobs.StatusSucceeded // applied, never advanced
		f.mu.Unlock()
	}
	restarted := NewDAG(f, f, f)
	pr, err := restarted.Advance(context.Background(), "pr-1")
	if err != nil {
		t.Fatal(err)
	}
	if pr.StageState("extract").Status != jobs.StatusSucceeded || len(f.stageRuns("extract")) != 3 || len(f.stageRuns("transform")) != 1 {
		t.Fatalf("after restart: %v; extract runs %d transform runs %d", statuses(pr), len(f.stageRuns("extract")), len(f.stageRuns("transform")))
	}
	// A crash after submitting but before recording: the same runs come back.
	f.prs["pr-1"].StageState("transform").Status = jobs.StatusPending
	f.prs["pr-1"].StageState("transform").Runs = nil
	pr, _ = restarted.Advance(context.Background(), "pr-1")
	if len(f.stageRuns("transform")) != 1 || pr.StageState("transform").Runs[0].RunID != f.stageRuns("transform")[0] {
		t.Fatalf("resubmission created a second run: %v", f.stageRuns("transform"))
	}
}

// An advance that submitted a stage's runs and then could not store the
// pipeline run leaves the stage PENDING; if those runs end before the next
// advance, the resubmission finds them ended and the stage ends with them
// (no event of theirs is left to end it).
func TestDAGResubmittedStageWhoseRunsEnded(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, etl, nil)
	for _, id := range f.stageRuns("extract") {
		f.mu.Lock()
		f.runs[id].Status = jobs.StatusSucceeded
		f.mu.Unlock()
	}
	f.mu.Lock()
	f.prs["pr-1"].StageState("extract").Status = jobs.StatusPending // the store of the advance failed
	f.prs["pr-1"].StageState("extract").Runs = nil
	f.mu.Unlock()
	f.end(t, d, f.stageRuns("extract")[2], jobs.StatusSucceeded) // its event
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	if st := pr.StageState("extract"); st.Status != jobs.StatusSucceeded || len(f.stageRuns("transform")) != 1 {
		t.Fatalf("after the event: %v, transform runs %v", statuses(pr), f.stageRuns("transform"))
	}
}

// TestDAGRetriesAFailedAdvance: the last run of a stage ends and the
// advance that would start the next stage fails (its submission meets a
// store error). No event is left to come; Retry advances it again.
func TestDAGRetriesAFailedAdvance(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, "name: p\nstages: [{name: a, taskDefinition: t}, {name: b, taskDefinition: t, dependsOn: [a]}]\n", nil)
	f.mu.Lock()
	f.failSubmits = 1
	f.mu.Unlock()
	f.end(t, d, f.stageRuns("a")[0], jobs.StatusSucceeded) // its advance fails
	if pr, _ := f.GetPipelineRun(context.Background(), "pr-1"); pr.StageState("b").Status != jobs.StatusPending {
		t.Fatalf("b started though its submission failed: %v", statuses(pr))
	}
	if n := d.Retry(context.Background()); n != 0 {
		t.Fatalf("%d pipeline runs still failing", n)
	}
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	if s := statuses(pr); s["a"] != jobs.StatusSucceeded || s["b"] != jobs.StatusRunning || len(f.stageRuns("b")) != 1 {
		t.Fatalf("after the retry: %v, b runs %v", s, f.stageRuns("b"))
	}
	f.end(t, d, f.stageRuns("b")[0], jobs.StatusSucceeded)
	if pr, _ := f.GetPipelineRun(context.Background(), "pr-1"); pr.Status != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s", pr.Status)
	}
}

// TestDAGStopAfterTheWorkEnded: a stop that comes after the last stage
// runs ended, but before the advance their end brings, has nothing left
// to stop: the pipeline run ends as its stages did, as a stop of a run
// already ended leaves it. Where a stage could still start (its
// dependencies hold, or the run was not advanced to it yet), the stop
// cancels it and the run ends CANCELED.
func TestDAGStopAfterTheWorkEnded(t *testing.T) {
	const withAlert = `
name: p
stages:
  - {name: a, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a]}
  - {name: alert, taskDefinition: t, dependsOn: [{stage: b, condition: failure}]}
`
	const chain = "name: p\nstages: [{name: a, taskDefinition: t}, {name: b, taskDefinition: t, dependsOn: [a]}]\n"
	tests := []struct {
		name  string
		src   string
		stage string      // whose run ends unadvanced before the stop
		end   jobs.Status // as it ends
		want  jobs.Status
		wantS map[string]jobs.Status
	}{
		{"every stage succeeded", withAlert, "b", jobs.StatusSucceeded, jobs.StatusSucceeded,
			map[string]jobs.Status{"a": jobs.StatusSucceeded, "b": jobs.StatusSucceeded, "alert": jobs.StatusSkipped}},
		{"the last stage failed", chain, "b", jobs.StatusFailed, jobs.StatusFailed,
			map[string]jobs.Status{"a": jobs.StatusSucceeded, "b": jobs.StatusFailed}},
		{"a failure handler would start", withAlert, "b", jobs.StatusFailed, jobs.StatusCanceled,
			map[string]jobs.Status{"a": jobs.StatusSucceeded, "b": jobs.StatusFailed, "alert": jobs.StatusCanceled}},
		{"a stage would start", withAlert, "a", jobs.StatusSucceeded, jobs.StatusCanceled,
			map[string]jobs.Status{"a": jobs.StatusSucceeded, "b": jobs.StatusCanceled, "alert": jobs.StatusCanceled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			d := NewDAG(f, f, f)
			start(t, f, d, tt.src, nil)
			if tt.stage == "b" {
				f.end(t, d, f.stageRuns("a")[0], jobs.StatusSucceeded)
			}
			// Applied, not advanced yet: the stop comes in between.
			id := f.stageRuns(tt.stage)[0]
			f.mu.Lock()
			f.runs[id].Status = tt.end
			f.mu.Unlock()
			pr, err := d.Stop(context.Background(), "pr-1", "enough")
			if err != nil {
				t.Fatal(err)
			}
			if pr.Status != tt.want || !maps.Equal(statuses(pr), tt.wantS) {
				t.Fatalf("after the stop: %s %v, want %s %v", pr.Status, statuses(pr), tt.want, tt.wantS)
			}
			if stopped := pr.Status == jobs.StatusCanceled; stopped != (pr.StoppedReason == "enough") {
				t.Errorf("%s run with stopped reason %q", pr.Status, pr.StoppedReason)
			}
			if st := pr.StageState("alert"); st != nil && st.Status == jobs.StatusSkipped && !strings.Contains(st.Reason, "dependency b ended") {
				t.Errorf("alert skipped for %q", st.Reason)
			}
			for _, name := range []string{"b", "alert"} {
				if tt.wantS[name] == jobs.StatusCanceled && len(f.stageRuns(name)) != 0 {
					t.Errorf("stage %s started after the stop", name)
				}
			}
		})
	}
}

// TestDAGCompleteAfterACanceledStage: a stage whose run a user stopped
// (gantry stop RUN) ended CANCELED while its pipeline run goes on; a
// stage depending on it with condition complete runs, as after a failure,
// and one with success or failure is skipped. A stop of the pipeline run
// itself starts nothing more, complete stages included.
func TestDAGCompleteAfterACanceledStage(t *testing.T) {
	const src = `
name: p
stages:
  - {name: a, taskDefinition: t}
  - {name: next, taskDefinition: t, dependsOn: [a]}
  - {name: alert, taskDefinition: t, dependsOn: [{stage: a, condition: failure}]}
  - {name: cleanup, taskDefinition: t, dependsOn: [{stage: a, condition: complete}]}
`
	t.Run("a stage's run stopped", func(t *testing.T) {
		f := newFake()
		d := NewDAG(f, f, f)
		start(t, f, d, src, nil)
		if _, err := f.Stop(context.Background(), f.stageRuns("a")[0], "Stopped by user"); err != nil {
			t.Fatal(err)
		}
		f.end(t, d, f.stageRuns("a")[0], jobs.StatusCanceled)
		pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
		want := map[string]jobs.Status{"a": jobs.StatusCanceled, "next": jobs.StatusSkipped, "alert": jobs.StatusSkipped,
			"cleanup": jobs.StatusRunning}
		if s := statuses(pr); !maps.Equal(s, want) {
			t.Fatalf("after a's run was stopped: %v, want %v", s, want)
		}
		f.end(t, d, f.stageRuns("cleanup")[0], jobs.StatusSucceeded)
		if pr, _ := f.GetPipelineRun(context.Background(), "pr-1"); pr.Status != jobs.StatusFailed {
			t.Fatalf("pipeline run with a canceled stage ended %s, want FAILED", pr.Status)
		}
	})
	t.Run("the pipeline run stopped", func(t *testing.T) {
		f := newFake()
		d := NewDAG(f, f, f)
		start(t, f, d, src, nil)
		pr, err := d.Stop(context.Background(), "pr-1", "enough")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]jobs.Status{"a": jobs.StatusCanceled, "next": jobs.StatusCanceled, "alert": jobs.StatusCanceled,
			"cleanup": jobs.StatusCanceled}
		if s := statuses(pr); pr.Status != jobs.StatusCanceled || !maps.Equal(s, want) || len(f.stageRuns("cleanup")) != 0 {
			t.Fatalf("after the stop: %s %v (cleanup runs %v), want CANCELED %v", pr.Status, s, f.stageRuns("cleanup"), want)
		}
	})
}

// TestDAGHoldStartsNoStage: once held (a server shutting down), the DAG
// records the ends of stage runs, skips what can no longer run and ends
// pipeline runs, but starts no stage, and leaves a pipeline run that
// never started unstarted; a DAG that is not held (the next start)
// starts what was left.
func TestDAGHoldStartsNoStage(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, etl, nil)
	unstarted := NewPipelineRun(mustParse(t, etl), "pr-2", jobs.Params{"day": "2026-01-01"}, time.Now())
	f.prs[unstarted.PipelineRunID] = unstarted
	d.Hold()

	ext := f.stageRuns("extract")
	for _, id := range ext {
		f.end(t, d, id, jobs.StatusSucceeded)
	}
	pr, _ := f.GetPipelineRun(ctx, "pr-1")
	if st := pr.StageState("extract"); st.Status != jobs.StatusSucceeded {
		t.Fatalf("extract %s once its runs ended, held: want SUCCEEDED", st.Status)
	}
	if st := pr.StageState("transform"); st.Status != jobs.StatusPending || len(f.stageRuns("transform")) != 0 {
		t.Fatalf("transform %s with runs %v, held: want PENDING, none", st.Status, f.stageRuns("transform"))
	}
	got, err := d.Advance(ctx, "pr-2")
	if err != nil {
		t.Fatal(err)
	}
	if got.StartedAt != nil || got.Status != jobs.StatusRunning || len(f.order) != len(ext) {
		t.Fatalf("a new pipeline run advanced, held: started %v, %s, %d runs submitted; want unstarted", got.StartedAt, got.Status, len(f.order))
	}

	// Held, a failure still ends what it ends.
	f2 := newFake()
	d2 := NewDAG(f2, f2, f2)
	start(t, f2, d2, "name: p\nstages:\n- {name: a, taskDefinition: x}\n- {name: b, taskDefinition: x, dependsOn: [a]}\n", nil)
	d2.Hold()
	f2.end(t, d2, f2.stageRuns("a")[0], jobs.StatusFailed)
	if pr, _ := f2.GetPipelineRun(ctx, "pr-1"); pr.Status != jobs.StatusFailed || pr.StageState("b").Status != jobs.StatusSkipped {
		t.Fatalf("held, a's run failed: %s %v, want FAILED with b SKIPPED", pr.Status, statuses(pr))
	}

	// The next start: a DAG not held over the same store.
	next := NewDAG(f, f, f)
	for _, id := range []string{"pr-1", "pr-2"} {
		if _, err := next.Advance(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if pr, _ := f.GetPipelineRun(ctx, "pr-1"); pr.StageState("transform").Status != jobs.StatusRunning || len(f.stageRuns("transform")) != 1 {
		t.Fatalf("pr-1 at the next start: transform %s, runs %v; want RUNNING, one run", pr.StageState("transform").Status, f.stageRuns("transform"))
	}
	if pr, _ := f.GetPipelineRun(ctx, "pr-2"); pr.StartedAt == nil || pr.StageState("extract").Status != jobs.StatusRunning {
		t.Fatalf("pr-2 at the next start: started %v, extract %s; want started, RUNNING", pr.StartedAt, pr.StageState("extract").Status)
	}
}

func mustParse(t *testing.T, src string) *jobs.Pipeline {
	t.Helper()
	p, err := jobs.ParsePipeline([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
