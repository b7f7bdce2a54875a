package scheduler

import (
	"context"
	"slices"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

const ruled = `
name: ruled
stages:
  - {name: a, taskDefinition: t}
  - {name: slow, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a]}
  - {name: c, taskDefinition: t, dependsOn: [b]}
  - {name: notify, taskDefinition: t, dependsOn: [c], triggerRule: oneFailed}
  - {name: watch, taskDefinition: t, dependsOn: [b, slow], triggerRule: oneFailed}
  - {name: cleanup, taskDefinition: t, dependsOn: [c, notify], triggerRule: allDone}
`

// TestDAGTriggerRules: b fails; in the same advance c is SKIPPED, notify
// (oneFailed on c, skipped for b's failure) and watch (oneFailed on b and
// slow, which still runs) start; cleanup (allDone) starts once notify
// ended. The pipeline run ends FAILED, notify and cleanup having
// succeeded.
func TestDAGTriggerRules(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, ruled, nil)
	f.end(t, d, f.stageRuns("a")[0], jobs.StatusSucceeded)
	f.end(t, d, f.stageRuns("b")[0], jobs.StatusFailed)
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	s := statuses(pr)
	if s["c"] != jobs.StatusSkipped || s["notify"] != jobs.StatusRunning || s["watch"] != jobs.StatusRunning ||
		s["slow"] != jobs.StatusRunning || s["cleanup"] != jobs.StatusPending {
		t.Fatalf("after b failed: %v", s)
	}
	if got, want := pr.StageState("c").Reason, "dependency b ended FAILED; condition success cannot hold"; got != want {
		t.Errorf("c's reason %q, want %q", got, want)
	}
	f.end(t, d, f.stageRuns("notify")[0], jobs.StatusSucceeded)
	pr, _ = f.GetPipelineRun(context.Background(), "pr-1")
	if s := statuses(pr); s["cleanup"] != jobs.StatusRunning {
		t.Fatalf("after notify: %v", s)
	}
	for _, st := range []string{"slow", "watch", "cleanup"} {
		f.end(t, d, f.stageRuns(st)[0], jobs.StatusSucceeded)
	}
	pr, _ = f.GetPipelineRun(context.Background(), "pr-1")
	if pr.Status != jobs.StatusFailed {
		t.Fatalf("pipeline run %s, want FAILED: b failed (%v)", pr.Status, statuses(pr))
	}
}

// TestDAGTriggerRulesAfterSuccess: nothing fails: notify and watch are
// SKIPPED saying so, cleanup runs, the run SUCCEEDED.
func TestDAGTriggerRulesAfterSuccess(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, ruled, nil)
	for _, st := range []string{"a", "slow", "b", "c"} {
		f.end(t, d, f.stageRuns(st)[0], jobs.StatusSucceeded)
	}
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	s := statuses(pr)
	if s["notify"] != jobs.StatusSkipped || s["watch"] != jobs.StatusSkipped || s["cleanup"] != jobs.StatusRunning {
		t.Fatalf("after all succeeded: %v", s)
	}
	if got, want := pr.StageState("notify").Reason, "no dependency failed (triggerRule oneFailed)"; got != want {
		t.Errorf("notify's reason %q, want %q", got, want)
	}
	f.end(t, d, f.stageRuns("cleanup")[0], jobs.StatusSucceeded)
	if pr, _ = f.GetPipelineRun(context.Background(), "pr-1"); pr.Status != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s: %v", pr.Status, statuses(pr))
	}
}

// TestDAGStopStartsNoRuledStage: a stopped run starts no stage, whatever
// its rule: the canceled stages do not count as failed for oneFailed,
// and allDone does not run after them.
func TestDAGStopStartsNoRuledStage(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, ruled, nil)
	f.end(t, d, f.stageRuns("a")[0], jobs.StatusSucceeded)
	pr, err := d.Stop(context.Background(), "pr-1", "enough")
	if err != nil {
		t.Fatal(err)
	}
	s := statuses(pr)
	if pr.Status != jobs.StatusCanceled || s["notify"] != jobs.StatusCanceled || s["watch"] != jobs.StatusCanceled || s["cleanup"] != jobs.StatusCanceled {
		t.Fatalf("after stop: %s %v", pr.Status, s)
	}
	for _, st := range []string{"notify", "watch", "cleanup"} {
		if n := len(f.stageRuns(st)); n != 0 {
			t.Errorf("%s has %d runs after the stop", st, n)
		}
	}
}

// TestDAGRuleStageFilesOfEndedDependencies: a oneFailed (or oneSuccess)
// stage starts while other dependencies still run; its runs get the
// files of the dependencies that had ended when it started, and never
// those of one that had not (which the worker would otherwise read as
// they stand when the run is placed: some, none or all, by chance).
func TestDAGRuleStageFilesOfEndedDependencies(t *testing.T) {
	for _, c := range []struct {
		rule string
		end  jobs.Status // of a, while slow runs
	}{
		{"oneFailed", jobs.StatusFailed},
		{"oneSuccess", jobs.StatusSucceeded},
	} {
		t.Run(c.rule, func(t *testing.T) {
			f := newFake()
			d := NewDAG(f, f, f)
			start(t, f, d, `
name: files
stages:
  - {name: a, taskDefinition: t}
  - {name: slow, taskDefinition: t}
  - {name: x, taskDefinition: t, dependsOn: [a, slow], triggerRule: `+c.rule+`}
`, nil)
			a := f.stageRuns("a")[0]
			f.end(t, d, a, c.end)
			x := f.stageRuns("x")
			if len(x) != 1 {
				t.Fatalf("x did not start after a ended %s", c.end)
			}
			req := f.reqs[len(f.reqs)-1]
			if !slices.Equal(req.Stage.Upstream, []string{"a", "slow"}) {
				t.Errorf("x's upstream %v: want both dependencies, each an /gantry/in directory", req.Stage.Upstream)
			}
			if got := req.Stage.UpstreamRuns["a"]; !slices.Equal(got, []string{a}) {
				t.Errorf("x reads a's files from %v, want [%s]", got, a)
			}
			if got, ok := req.Stage.UpstreamRuns["slow"]; ok {
				t.Errorf("x reads the files of slow, which had not ended when x started: %v", got)
			}
		})
	}
}

// TestDAGReadsOutputOnceEnded: a stage reads an output (arraySize's
// fromOutput, a when) only once the stage that writes it has ended,
// whatever the rules before it: here c (allSuccess after b) reads a.N,
// and b (oneFailed on a and x) ran and succeeded while a still ran. c
// waits PENDING for a, reading nothing; once a ended it reads a's
// outputs, as final.
func TestDAGReadsOutputOnceEnded(t *testing.T) {
	const src = `
name: reads
stages:
  - {name: a, taskDefinition: t}
  - {name: x, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a, x], triggerRule: oneFailed}
  - {name: c, taskDefinition: t, dependsOn: [b], arraySize: {fromOutput: a.N}}
  - {name: w, taskDefinition: t, dependsOn: [b], when: {output: a.MODE, equals: full}}
`
	f, o := newFake(), &outputs{values: map[string]string{"a.N": "2", "a.MODE": "full"}}
	d := NewDAG(f, f, f, WithOutputs(o))
	start(t, f, d, src, nil)
	f.end(t, d, f.stageRuns("x")[0], jobs.StatusFailed)
	f.end(t, d, f.stageRuns("b")[0], jobs.StatusSucceeded)
	d.decide(context.Background())
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	if s := statuses(pr); s["a"] != jobs.StatusRunning || s["c"] != jobs.StatusPending || s["w"] != jobs.StatusPending || o.reads != 0 {
		t.Fatalf("while a runs: %v, %d reads of outputs; want c and w PENDING, nothing read", s, o.reads)
	}
	a := f.stageRuns("a")[0]
	f.end(t, d, a, jobs.StatusSucceeded)
	d.decide(context.Background())
	pr, _ = f.GetPipelineRun(context.Background(), "pr-1")
	if s := statuses(pr); s["c"] != jobs.StatusRunning || s["w"] != jobs.StatusRunning || len(f.stageRuns("c")) != 2 {
		t.Fatalf("after a ended: %v, c has %d runs", s, len(f.stageRuns("c")))
	}
	if !slices.Equal(o.runIDs, []string{a}) {
		t.Errorf("read the outputs of %v, want a's run %s", o.runIDs, a)
	}
}

// TestDAGRuleReadsOutputOfFailedDependency: under allDone a stage runs
// after a dependency that failed, which wrote no output: a size read from
// it is not set, and the stage FAILS saying so and how that one ended.
func TestDAGRuleReadsOutputOfFailedDependency(t *testing.T) {
	f, o := newFake(), &outputs{values: map[string]string{}}
	d := NewDAG(f, f, f, WithOutputs(o))
	start(t, f, d, `
name: done
stages:
  - {name: a, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a], triggerRule: allDone, arraySize: {fromOutput: a.N}}
`, nil)
	f.end(t, d, f.stageRuns("a")[0], jobs.StatusFailed)
	d.decide(context.Background())
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	want := "arraySize: a.N is not set: no run of stage a wrote a N= line to /gantry/out/outputs.env (stage a ended FAILED)"
	if st := pr.StageState("b"); st.Status != jobs.StatusFailed || st.Reason != want {
		t.Fatalf("b %s %q, want FAILED %q", st.Status, st.Reason, want)
	}
}

// TestDAGOneFailedReadsItsDependencyOutputs: a oneFailed stage after one
// dependency starts once that one ended, as allFailed would: an output of
// it is final then (here what the children of an array that succeeded
// wrote), read from every run of it, without a wait.
func TestDAGOneFailedReadsItsDependencyOutputs(t *testing.T) {
	f, o := newFake(), &outputs{values: map[string]string{"arr.ROWS": "5"}}
	d := NewDAG(f, f, f, WithOutputs(o))
	start(t, f, d, `
name: partial
stages:
  - {name: arr, taskDefinition: t, arraySize: 3}
  - {name: partial, taskDefinition: t, dependsOn: [arr], triggerRule: oneFailed, when: {output: arr.ROWS, notEquals: ""}}
`, nil)
	arr := f.stageRuns("arr")
	for i, s := range []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusSucceeded} {
		f.end(t, d, arr[i], s)
	}
	d.decide(context.Background())
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	if s := statuses(pr); s["arr"] != jobs.StatusFailed || s["partial"] != jobs.StatusRunning {
		t.Fatalf("stages %v: want arr FAILED, partial RUNNING", s)
	}
	if !slices.Equal(o.runIDs, arr) {
		t.Errorf("read the outputs of %v, want every run of arr %v", o.runIDs, arr)
	}
}
