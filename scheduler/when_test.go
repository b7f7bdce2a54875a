package scheduler

import (
	"context"
	"errors"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// check says which way to go; full-reload and incremental are the two
// branches, report follows both, and done runs however they ended.
const branching = `
name: reload
parameters: {mode: daily}
stages:
  - {name: check, taskDefinition: check}
  - name: full-reload
    taskDefinition: full
    dependsOn: [check]
    when: {output: check.MODE, in: [full, rebuild]}
  - name: incremental
    taskDefinition: incremental
    dependsOn: [check]
    when: {output: check.MODE, notIn: [full, rebuild]}
  - {name: publish, taskDefinition: publish, dependsOn: [full-reload]}
  - {name: done, taskDefinition: done, dependsOn: [{stage: full-reload, condition: complete}, {stage: incremental, condition: complete}]}
  - name: backfill-only
    taskDefinition: backfill
    dependsOn: [check]
    when: {param: mode, equals: backfill}
`

// startBranching starts branching with check's outputs (MODE unset if
// mode is empty) and the given parameters, and runs check to success.
func startBranching(t *testing.T, mode string, params map[string]string) (*fake, *outputs, *DAG) {
	t.Helper()
	f, o := newFake(), &outputs{values: map[string]string{}}
	if mode != "" {
		o.set("check.MODE", mode)
	}
	d := NewDAG(f, f, f, WithOutputs(o))
	start(t, f, d, branching, params)
	f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
	d.decide(context.Background()) // RunDecisions' work, here and now
	return f, o, d
}

// check wrote MODE=incremental: incremental runs, full-reload is SKIPPED
// saying why, and what follows goes as after any skipped stage: publish
// SKIPPED, done (complete) runs. backfill-only's parameter says no
// without a read.
func TestDAGWhenChoosesABranch(t *testing.T) {
	f, o, d := startBranching(t, "incremental", nil)
	pr := f.pipelineRun(t)
	full, inc, bf := pr.StageState("full-reload"), pr.StageState("incremental"), pr.StageState("backfill-only")
	if full.Status != jobs.StatusSkipped || full.Reason != `when: check.MODE is "incremental", not one of "full", "rebuild"` ||
		len(full.Runs) != 0 || full.StartedAt == nil || full.FinishedAt == nil || full.WhenHeld || len(f.stageRuns("full-reload")) != 0 {
		t.Fatalf("full-reload %s %q held %v runs %v", full.Status, full.Reason, full.WhenHeld, f.stageRuns("full-reload"))
	}
	if inc.Status != jobs.StatusRunning || !inc.WhenHeld || len(f.stageRuns("incremental")) != 1 {
		t.Fatalf("incremental %s %q held %v", inc.Status, inc.Reason, inc.WhenHeld)
	}
	if bf.Status != jobs.StatusSkipped || bf.Reason != `when: parameter mode is "daily", not "backfill"` {
		t.Fatalf("backfill-only %s %q", bf.Status, bf.Reason)
	}
	if s := statuses(pr); s["publish"] != jobs.StatusSkipped || s["done"] != jobs.StatusPending {
		t.Fatalf("after the branches: %v", s)
	}
	if o.reads != 2 { // one for each when on check.MODE; none for the parameter
		t.Fatalf("%d reads", o.reads)
	}
	// Later outputs change nothing: decided.
	o.set("check.MODE", "full")
	f.end(t, d, f.stageRuns("incremental")[0], jobs.StatusSucceeded)
	f.end(t, d, f.stageRuns("done")[0], jobs.StatusSucceeded)
	pr = f.pipelineRun(t)
	if pr.Status != jobs.StatusSucceeded || len(f.stageRuns("full-reload")) != 0 || o.reads != 2 {
		t.Fatalf("pipeline run %s %v, full-reload runs %v, %d reads", pr.Status, statuses(pr), f.stageRuns("full-reload"), o.reads)
	}
}

// The other way: MODE=rebuild runs full-reload and publish, skips
// incremental; the parameter given at run time runs backfill-only.
func TestDAGWhenOtherBranch(t *testing.T) {
	f, _, d := startBranching(t, "rebuild", map[string]string{"mode": "backfill"})
	pr := f.pipelineRun(t)
	if s := statuses(pr); s["full-reload"] != jobs.StatusRunning || s["incremental"] != jobs.StatusSkipped || s["backfill-only"] != jobs.StatusRunning {
		t.Fatalf("stages %v", s)
	}
	if r := pr.StageState("incremental").Reason; r != `when: check.MODE is "rebuild", excluded by notIn` {
		t.Fatalf("incremental's reason %q", r)
	}
	if !pr.StageState("backfill-only").WhenHeld {
		t.Fatal("backfill-only's when not recorded as held")
	}
	f.end(t, d, f.stageRuns("full-reload")[0], jobs.StatusSucceeded)
	if len(f.stageRuns("publish")) != 1 || len(f.stageRuns("done")) != 1 {
		t.Fatalf("publish %v done %v", f.stageRuns("publish"), f.stageRuns("done"))
	}
}

// No run of check wrote MODE: it counts as the empty string, which is
// not full nor rebuild: incremental runs.
func TestDAGWhenMissingOutput(t *testing.T) {
	f, _, _ := startBranching(t, "", nil)
	pr := f.pipelineRun(t)
	if s := statuses(pr); s["full-reload"] != jobs.StatusSkipped || s["incremental"] != jobs.StatusRunning {
		t.Fatalf("stages %v", s)
	}
	if r := pr.StageState("full-reload").Reason; r != `when: check.MODE is not set (no run of check wrote MODE=), not one of "full", "rebuild"` {
		t.Fatalf("full-reload's reason %q", r)
	}
}

// An outputs.env that is no KEY=VALUE lines fails the stage, naming it,
// without a run (a failure stage after it runs); a store that cannot be
// read keeps it PENDING and the advance is tried again.
func TestDAGWhenReadProblems(t *testing.T) {
	f, o := newFake(), &outputs{values: map[string]string{}, err: jobs.Invalid("stage check: outputs.env of run run1: line 1: want KEY=VALUE")}
	d := NewDAG(f, f, f, WithOutputs(o))
	start(t, f, d, branching, nil)
	f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
	d.decide(context.Background())
	st := f.pipelineRun(t).StageState("full-reload")
	if want := "when: check.MODE: stage check: outputs.env of run run1: line 1: want KEY=VALUE"; st.Status != jobs.StatusFailed || st.Reason != want ||
		len(f.stageRuns("full-reload")) != 0 {
		t.Fatalf("full-reload %s %q, want FAILED %q", st.Status, st.Reason, want)
	}

	f, o = newFake(), &outputs{values: map[string]string{"check.MODE": "full"}, err: errors.New("nats: timeout")}
	d = NewDAG(f, f, f, WithOutputs(o))
	start(t, f, d, branching, nil)
	f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
	d.decide(context.Background())
	if st := f.pipelineRun(t).StageState("full-reload"); st.Status != jobs.StatusPending || st.WhenHeld || len(d.failed) != 1 {
		t.Fatalf("full-reload %s %q held %v, %d runs failing", st.Status, st.Reason, st.WhenHeld, len(d.failed))
	}
	o.mu.Lock()
	o.err = nil
	o.mu.Unlock()
	if n := d.Retry(context.Background()); n != 0 {
		t.Fatalf("%d still failing", n)
	}
	d.decide(context.Background())
	if s := statuses(f.pipelineRun(t)); s["full-reload"] != jobs.StatusRunning || s["incremental"] != jobs.StatusSkipped {
		t.Fatalf("after the retry: %v", s)
	}

	t.Run("no outputs reader", func(t *testing.T) {
		f := newFake()
		d := NewDAG(f, f, f)
		start(t, f, d, branching, nil)
		f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
		if st := f.pipelineRun(t).StageState("full-reload"); st.Status != jobs.StatusFailed || st.Reason != "when: check.MODE: this server cannot read stage outputs" {
			t.Fatalf("full-reload %s %q", st.Status, st.Reason)
		}
	})
}

// The server dies after the when held, before the stage's run was stored
// (here: its submission fails as a store error would, leaving the
// advance unstored as a crash would): the decision was stored first, so
// the restarted server starts the stage without reading again, though
// the output now says otherwise. A retry of the pipeline run decides
// again.
func TestDAGWhenDecidedOnce(t *testing.T) {
	const src = `
name: reload
stages:
  - {name: check, taskDefinition: check}
  - {name: full-reload, taskDefinition: full, dependsOn: [check], when: {output: check.MODE, equals: full}}
`
	f, o := newFake(), &outputs{values: map[string]string{"check.MODE": "full"}}
	d := NewDAG(f, &failingRunner{fake: f, ok: 1}, f, WithOutputs(o)) // check only
	start(t, f, d, src, nil)
	f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
	d.decide(context.Background())
	st := f.pipelineRun(t).StageState("full-reload")
	if st.Status != jobs.StatusPending || !st.WhenHeld || len(f.stageRuns("full-reload")) != 0 {
		t.Fatalf("after the failed advance: full-reload %s held %v runs %v", st.Status, st.WhenHeld, f.stageRuns("full-reload"))
	}
	o.set("check.MODE", "incremental")
	restarted := NewDAG(f, f, f, WithOutputs(o))
	pr, err := restarted.Advance(context.Background(), "pr-1")
	if err != nil {
		t.Fatal(err)
	}
	restarted.decide(context.Background())
	pr = f.pipelineRun(t)
	if s := statuses(pr); s["full-reload"] != jobs.StatusRunning || len(f.stageRuns("full-reload")) != 1 || o.reads != 1 {
		t.Fatalf("after restart: %v, full-reload runs %v, %d reads", s, f.stageRuns("full-reload"), o.reads)
	}
	f.end(t, restarted, f.stageRuns("full-reload")[0], jobs.StatusFailed)
	Retry(pr, []string{"full-reload"}, pr.CreatedAt)
	if st := pr.StageState("full-reload"); st.WhenHeld || st.Status != jobs.StatusPending || st.Try != 2 {
		t.Fatalf("retried: full-reload %s try %d held %v", st.Status, st.Try, st.WhenHeld)
	}
}

// A stage whose when and arraySize both read outputs reads the when's
// first, then its size; one whose when does not hold reads no size. The
// when's two conditions on check read check's outputs once (they read
// them once each: 3 reads where the when held, 2 where it did not, each
// of two objects per run of check).
func TestDAGWhenThenArraySize(t *testing.T) {
	const src = `
name: p
stages:
  - {name: check, taskDefinition: check}
  - name: fan
    taskDefinition: fan
    dependsOn: [check]
    when: [{output: check.MODE, equals: full}, {output: check.FILES, notEquals: "0"}]
    arraySize: {fromOutput: check.FILES}
`
	for _, tc := range []struct {
		mode  string
		runs  int
		reads int
	}{{"full", 2, 2}, {"incremental", 0, 1}} {
		f, o := newFake(), &outputs{values: map[string]string{"check.MODE": tc.mode, "check.FILES": "2"}}
		d := NewDAG(f, f, f, WithOutputs(o))
		start(t, f, d, src, nil)
		f.end(t, d, f.stageRuns("check")[0], jobs.StatusSucceeded)
		d.decide(context.Background())
		if n := len(f.stageRuns("fan")); n != tc.runs || o.reads != tc.reads {
			t.Errorf("MODE=%s: %d runs of fan, %d reads; want %d, %d", tc.mode, n, o.reads, tc.runs, tc.reads)
		}
	}
}
