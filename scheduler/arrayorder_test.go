package scheduler

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// settle does what the server does for runs submitted with dependsOn
// (server/rundeps.go): each waiting run whose dependencies ended is
// released or failed without running, and the DAG told of a failure, as
// of any run's end; until nothing changes.
func (f *fake) settle(t *testing.T, d *DAG) {
	t.Helper()
	for {
		var failed []*jobs.Run
		f.mu.Lock()
		for _, id := range f.order {
			r := f.runs[id]
			changed, _ := r.ResolveDependencies(time.Now(), func(id string) (jobs.Status, bool) {
				dep, ok := f.runs[id]
				if !ok {
					return "", false
				}
				return dep.Status, true
			})
			if changed && r.Status.Terminal() {
				failed = append(failed, clone(r))
			}
		}
		f.mu.Unlock()
		if len(failed) == 0 {
			return
		}
		for _, r := range failed {
			d.RunChanged(context.Background(), r)
		}
	}
}

// released lists the children of stage, by index, that the server would
// have let run: no longer waiting, and not failed without running.
func (f *fake) released(stage string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, id := range f.order {
		r := f.runs[id]
		if r.Spec.Stage.Stage != stage || r.Waiting() || r.StopCode == jobs.StopFailedToStart {
			continue
		}
		out = append(out, *r.Spec.Stage.ArrayIndex)
	}
	return out
}

// endExit ends a run FAILED with an exit code (a skip code, say).
func (f *fake) endExit(t *testing.T, d *DAG, id string, code int) {
	t.Helper()
	f.mu.Lock()
	r := f.runs[id]
	r.Status, r.ExitCode, r.StopCode = jobs.StatusFailed, &code, jobs.StopEssentialExited
	f.mu.Unlock()
	d.RunChanged(context.Background(), clone(r))
}

const sequential = `
name: seq
stages:
  - {name: a, taskDefinition: t, arraySize: 3, arrayOrder: sequential, skipOnExitCode: [99]}
  - {name: after, taskDefinition: t, dependsOn: [a]}
`

// TestDAGSequentialReleaseOrder: child i+1 of a sequential array is
// released only once child i succeeded; one that did not succeed stops
// those after it, which fail without running, and the stage ends as that
// child did, its reason naming it.
func TestDAGSequentialReleaseOrder(t *testing.T) {
	const ok, fail, skip = 0, 1, 99
	for _, c := range []struct {
		name     string
		outcomes []int // of the children released, in order
		// released after each outcome
		steps       [][]int
		status      jobs.Status
		reason      string
		after       jobs.Status
		pipelineRun jobs.Status
	}{
		{"all succeed", []int{ok, ok, ok}, [][]int{{0, 1}, {0, 1, 2}, {0, 1, 2}}, jobs.StatusSucceeded, "", jobs.StatusQueued, jobs.StatusRunning},
		{"child 1 fails", []int{ok, fail}, [][]int{{0, 1}, {0, 1}}, jobs.StatusFailed,
			"1 of 3 runs failed; 1 of 3 runs not run after a[1] FAILED", "", jobs.StatusFailed},
		{"child 0 fails", []int{fail}, [][]int{{0}}, jobs.StatusFailed,
			"1 of 3 runs failed; 2 of 3 runs not run after a[0] FAILED", "", jobs.StatusFailed},
		{"child 1 skips itself", []int{ok, skip}, [][]int{{0, 1}, {0, 1}}, jobs.StatusSucceeded,
			"1 of 3 runs exited 99 (skipOnExitCode): skipped; 1 of 3 runs not run after a[1] skipped", jobs.StatusQueued, jobs.StatusRunning},
		{"child 0 skips itself", []int{skip}, [][]int{{0}}, jobs.StatusSkipped,
			"1 of 3 runs exited 99 (skipOnExitCode): skipped; 2 of 3 runs not run after a[0] skipped", "", jobs.StatusSucceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			d := NewDAG(f, f, f)
			start(t, f, d, sequential, nil)
			runs := f.stageRuns("a")
			if len(runs) != 3 {
				t.Fatalf("every child is submitted at once, the later ones waiting: %v", runs)
			}
			if got := f.released("a"); !slices.Equal(got, []int{0}) {
				t.Fatalf("released at start: %v, want [0]", got)
			}
			for i, o := range c.outcomes {
				switch o {
				case ok:
					f.end(t, d, runs[i], jobs.StatusSucceeded)
				case skip:
					f.endExit(t, d, runs[i], 99)
				default:
					f.end(t, d, runs[i], jobs.StatusFailed)
				}
				f.settle(t, d)
				if got := f.released("a"); !slices.Equal(got, c.steps[i]) {
					t.Fatalf("after child %d ended: released %v, want %v", i, got, c.steps[i])
				}
			}
			pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
			if st := pr.StageState("a"); st.Status != c.status || st.Reason != c.reason {
				t.Fatalf("stage a %s %q, want %s %q", st.Status, st.Reason, c.status, c.reason)
			}
			after := f.stageRuns("after")
			switch {
			case c.after == "" && len(after) != 0:
				t.Fatalf("after ran: %v", after)
			case c.after != "" && len(after) != 1:
				t.Fatalf("after did not start: %v", statuses(pr))
			}
			if pr.Status != c.pipelineRun {
				t.Fatalf("pipeline run %s, want %s", pr.Status, c.pipelineRun)
			}
		})
	}
}

// TestDAGSequentialStop: stopping the pipeline run stops the child that
// runs and the ones waiting, which never start.
func TestDAGSequentialStop(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, sequential, nil)
	runs := f.stageRuns("a")
	f.end(t, d, runs[0], jobs.StatusSucceeded)
	f.settle(t, d)
	pr, err := d.Stop(context.Background(), "pr-1", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range runs[1:] {
		if r, _ := f.GetRun(context.Background(), id); r.Status != jobs.StatusCanceled {
			t.Fatalf("run %s %s after the stop", id, r.Status)
		}
	}
	f.settle(t, d)
	if got := f.released("a"); !slices.Equal(got, []int{0, 1, 2}) && !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("released %v", got)
	}
	pr, _ = f.GetPipelineRun(context.Background(), "pr-1")
	if st := pr.StageState("a"); st.Status != jobs.StatusCanceled || pr.Status != jobs.StatusCanceled {
		t.Fatalf("stage a %s (%q), pipeline run %s", st.Status, st.Reason, pr.Status)
	}
}

const nToN = `
name: pairs
stages:
  - {name: up, taskDefinition: t, arraySize: 3}
  - {name: down, taskDefinition: t, arraySize: 3, dependsOn: [{stage: up, type: N_TO_N}]}
  - {name: last, taskDefinition: t, dependsOn: [down]}
`

// TestDAGNToN: the downstream array starts with its upstream, child i
// released once child i of up succeeded, reading only its files; child 1
// of up failing means child 1 of down does not run, and down fails once
// its other children ended.
func TestDAGNToN(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, nToN, nil)
	up, down := f.stageRuns("up"), f.stageRuns("down")
	if len(up) != 3 || len(down) != 3 {
		t.Fatalf("down starts with up, all children submitted: up %v down %v", up, down)
	}
	if got := f.released("down"); len(got) != 0 {
		t.Fatalf("down released before any child of up ended: %v", got)
	}
	for i, req := range f.reqs[3:] {
		if got := req.Stage.UpstreamRuns["up"]; !slices.Equal(got, []string{up[i]}) {
			t.Fatalf("down[%d] reads the files of %v, want only %s's", i, got, up[i])
		}
	}
	f.end(t, d, up[2], jobs.StatusSucceeded)
	f.settle(t, d)
	if got := f.released("down"); !slices.Equal(got, []int{2}) {
		t.Fatalf("after up[2] succeeded: released %v, want [2]", got)
	}
	f.end(t, d, up[0], jobs.StatusSucceeded)
	f.end(t, d, down[2], jobs.StatusSucceeded)
	f.end(t, d, up[1], jobs.StatusFailed)
	f.settle(t, d)
	if got := f.released("down"); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("released %v, want [0 2]", got)
	}
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	if st := pr.StageState("down"); st.Status != jobs.StatusRunning {
		t.Fatalf("down %s before down[0] ended", st.Status)
	}
	f.end(t, d, down[0], jobs.StatusSucceeded)
	pr, _ = f.GetPipelineRun(context.Background(), "pr-1")
	if st := pr.StageState("down"); st.Status != jobs.StatusFailed || st.Reason != "1 of 3 runs not run after up[1] FAILED" {
		t.Fatalf("down %s %q", st.Status, st.Reason)
	}
	if s := statuses(pr); s["last"] != jobs.StatusSkipped || pr.Status != jobs.StatusFailed {
		t.Fatalf("%v, pipeline run %s", s, pr.Status)
	}
}

// TestDAGNToNSizes: a size read from an output that differs from the
// upstream's fails the stage naming both; an upstream that ended without
// children skips it.
func TestDAGNToNSizes(t *testing.T) {
	const src = `
name: pairs
stages:
  - {name: x, taskDefinition: t}
  - {name: up, taskDefinition: t, arraySize: 3, dependsOn: [x]}
  - {name: down, taskDefinition: t, arraySize: {fromOutput: x.N}, dependsOn: [x, {stage: up, type: N_TO_N}]}
`
	for _, c := range []struct {
		n, status, reason string
	}{
		{"2", string(jobs.StatusFailed), "N_TO_N: arraySize 2 (from x.N) of down differs from arraySize 3 of up: N_TO_N pairs children of arrays of one size"},
		{"3", string(jobs.StatusRunning), ""},
	} {
		f, o := newFake(), &outputs{values: map[string]string{"x.N": c.n}}
		d := NewDAG(f, f, f, WithOutputs(o))
		start(t, f, d, src, nil)
		f.end(t, d, f.stageRuns("x")[0], jobs.StatusSucceeded)
		d.decide(context.Background())
		pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
		if st := pr.StageState("down"); string(st.Status) != c.status || st.Reason != c.reason {
			t.Fatalf("N=%s: down %s %q", c.n, st.Status, st.Reason)
		}
	}
	// up fails to start (an unknown task definition): nothing to pair.
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, `
name: pairs
stages:
  - {name: up, taskDefinition: missing, arraySize: 2}
  - {name: down, taskDefinition: t, arraySize: 2, dependsOn: [{stage: up, type: N_TO_N}]}
`, nil)
	pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
	if st := pr.StageState("down"); st.Status != jobs.StatusSkipped || st.Reason != "dependency up ended FAILED without a child; N_TO_N needs children of it that ran" {
		t.Fatalf("down %s %q", st.Status, st.Reason)
	}
}

// TestDAGNToNSkipAfterFailureCountsAsFailed: an N_TO_N stage SKIPPED
// because its upstream FAILED without a child (an unknown task
// definition here; a size that could not be read does the same) was
// skipped for an upstream failure, as Airflow's upstream_failed: a
// oneFailed stage after it runs, a noneFailed one is SKIPPED, and the
// reasons say so. An N_TO_N stage SKIPPED because its upstream was
// skipped (its when did not hold) is a plain skip: the oneFailed stage
// is SKIPPED and the noneFailed one runs.
func TestDAGNToNSkipAfterFailureCountsAsFailed(t *testing.T) {
	const src = `
name: pairs
parameters: {go: "yes"}
stages:
  - {name: up, taskDefinition: "${td}", arraySize: 2, when: {param: go, equals: "yes"}}
  - {name: down, taskDefinition: t, arraySize: 2, dependsOn: [{stage: up, type: N_TO_N}]}
  - {name: notify, taskDefinition: t, dependsOn: [down], triggerRule: oneFailed}
  - {name: join, taskDefinition: t, dependsOn: [down], triggerRule: noneFailed}
`
	for _, c := range []struct {
		name, td, goOn      string
		down, notify, join  jobs.Status
		downReason, joinWhy string
		notifyWhy           string
	}{
		{name: "up failed without a child", td: "missing", goOn: "yes",
			down: jobs.StatusSkipped, notify: jobs.StatusRunning, join: jobs.StatusSkipped,
			downReason: "dependency up ended FAILED without a child; N_TO_N needs children of it that ran",
			joinWhy:    "dependency down ended SKIPPED (upstream failed); triggerRule noneFailed cannot hold"},
		{name: "up skipped", td: "t", goOn: "no",
			down: jobs.StatusSkipped, notify: jobs.StatusSkipped, join: jobs.StatusRunning,
			downReason: "dependency up ended SKIPPED; N_TO_N needs children of it that ran",
			notifyWhy:  "no dependency failed (triggerRule oneFailed)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			d := NewDAG(f, f, f)
			pr := start(t, f, d, strings.Replace(src, "${td}", c.td, 1), map[string]string{"go": c.goOn})
			s := statuses(pr)
			if s["down"] != c.down || s["notify"] != c.notify || s["join"] != c.join {
				t.Fatalf("stages %v: want down %s, notify %s, join %s", s, c.down, c.notify, c.join)
			}
			if got := pr.StageState("down").Reason; got != c.downReason {
				t.Errorf("down's reason %q, want %q", got, c.downReason)
			}
			if got := pr.StageState("join").Reason; c.joinWhy != "" && got != c.joinWhy {
				t.Errorf("join's reason %q, want %q", got, c.joinWhy)
			}
			if got := pr.StageState("notify").Reason; c.notifyWhy != "" && got != c.notifyWhy {
				t.Errorf("notify's reason %q, want %q", got, c.notifyWhy)
			}
		})
	}
}

// midSubmission: down pairs with up child by child, more with down;
// notify and join tell, through their rules, whether down failed or was
// skipped for an upstream failure.
const midSubmission = `
name: pairs
stages:
  - {name: up, taskDefinition: t, arraySize: 3}
  - {name: down, taskDefinition: t, arraySize: 3, dependsOn: [{stage: up, type: N_TO_N}]}
  - {name: more, taskDefinition: t, arraySize: 3, dependsOn: [{stage: down, type: N_TO_N}]}
  - {name: notify, taskDefinition: t, dependsOn: [more], triggerRule: oneFailed}
  - {name: join, taskDefinition: t, dependsOn: [more], triggerRule: noneFailed}
`

// at reports whether req is the submission of child i of stage.
func at(req *jobs.SubmitRequest, stage string, i int) bool {
	return req.Stage.Stage == stage && req.Stage.ArrayIndex != nil && *req.Stage.ArrayIndex == i
}

// TestDAGNToNUpstreamFailsMidSubmission: how an N_TO_N stage ends does
// not depend on when, against the submission of the children, its
// upstream failed.
//
// A stage that fails as it starts (a child it could not submit: its task
// definition gone, say) stops the children it had submitted: whether that
// came at its first child or a later one, the N_TO_N stage after it is
// SKIPPED for an upstream failure, and so is the one after that; the
// oneFailed stage runs, the noneFailed one is SKIPPED. Before the fix, a
// refusal at a later child left the upstream with children, the N_TO_N
// stage started, and failed at the first child with none to pair with
// ("child 1 waits for up[1], which has no run").
//
// A child of up that fails, before, during (at any child's submission, of
// up's or down's) or after the submission of the children, leaves its
// counterparts not run, and down FAILED once its other children ended,
// as README's Children in order says: that order was never a bug.
func TestDAGNToNUpstreamFailsMidSubmission(t *testing.T) {
	const notRun = "1 of 3 runs not run after up[0] FAILED"
	for _, c := range []struct {
		name string
		// refuse: the submission of child refuse.i of refuse.stage is
		// refused; fail: at that of child fail.i of fail.stage, up[0]
		// FAILS (i -1: once every child was submitted).
		refuse, fail *jobs.ChildRef
		down, more   jobs.Status
		downReason   string
		moreReason   string
	}{
		{name: "up refused at its child 0", refuse: &jobs.ChildRef{Stage: "up", Index: 0},
			down: jobs.StatusSkipped, downReason: "dependency up ended FAILED without a child; N_TO_N needs children of it that ran",
			more: jobs.StatusSkipped, moreReason: "dependency down ended SKIPPED (upstream failed); N_TO_N needs children of it that ran"},
		{name: "up refused at its child 1", refuse: &jobs.ChildRef{Stage: "up", Index: 1},
			down: jobs.StatusSkipped, downReason: "dependency up ended FAILED before all its children were submitted (1 submitted, then stopped); N_TO_N needs children of it that ran",
			more: jobs.StatusSkipped, moreReason: "dependency down ended SKIPPED (upstream failed); N_TO_N needs children of it that ran"},
		{name: "up refused at its child 2", refuse: &jobs.ChildRef{Stage: "up", Index: 2},
			down: jobs.StatusSkipped, downReason: "dependency up ended FAILED before all its children were submitted (2 submitted, then stopped); N_TO_N needs children of it that ran",
			more: jobs.StatusSkipped, moreReason: "dependency down ended SKIPPED (upstream failed); N_TO_N needs children of it that ran"},
		{name: "down refused at its child 0", refuse: &jobs.ChildRef{Stage: "down", Index: 0},
			down: jobs.StatusFailed, downReason: "task definition missing: not registered",
			more: jobs.StatusSkipped, moreReason: "dependency down ended FAILED without a child; N_TO_N needs children of it that ran"},
		{name: "down refused at its child 2", refuse: &jobs.ChildRef{Stage: "down", Index: 2},
			down: jobs.StatusFailed, downReason: "task definition missing: not registered",
			more: jobs.StatusSkipped, moreReason: "dependency down ended FAILED before all its children were submitted (2 submitted, then stopped); N_TO_N needs children of it that ran"},
		{name: "up[0] fails at up[1]'s submission", fail: &jobs.ChildRef{Stage: "up", Index: 1},
			down: jobs.StatusFailed, downReason: notRun, more: jobs.StatusFailed, moreReason: "1 of 3 runs not run after up[0] FAILED"},
		{name: "up[0] fails at down[0]'s submission", fail: &jobs.ChildRef{Stage: "down", Index: 0},
			down: jobs.StatusFailed, downReason: notRun, more: jobs.StatusFailed, moreReason: "1 of 3 runs not run after up[0] FAILED"},
		{name: "up[0] fails at down[2]'s submission", fail: &jobs.ChildRef{Stage: "down", Index: 2},
			down: jobs.StatusFailed, downReason: notRun, more: jobs.StatusFailed, moreReason: "1 of 3 runs not run after up[0] FAILED"},
		{name: "up[0] fails at more[1]'s submission", fail: &jobs.ChildRef{Stage: "more", Index: 1},
			down: jobs.StatusFailed, downReason: notRun, more: jobs.StatusFailed, moreReason: "1 of 3 runs not run after up[0] FAILED"},
		{name: "up[0] fails once every child was submitted", fail: &jobs.ChildRef{Stage: "up", Index: -1},
			down: jobs.StatusFailed, downReason: notRun, more: jobs.StatusFailed, moreReason: "1 of 3 runs not run after up[0] FAILED"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			d := NewDAG(f, f, f)
			f.beforeSubmit = func(req *jobs.SubmitRequest) {
				if r := c.refuse; r != nil && at(req, r.Stage, r.Index) {
					req.TaskDefinition = []byte(`"missing"`)
				}
				if r := c.fail; r != nil && at(req, r.Stage, r.Index) {
					f.endDuring(f.stageRuns("up")[0], jobs.StatusFailed)
				}
			}
			start(t, f, d, midSubmission, nil)
			if c.fail != nil && c.fail.Index < 0 {
				f.end(t, d, f.stageRuns("up")[0], jobs.StatusFailed)
			}
			f.tellEnded(d)
			f.settle(t, d)
			// Every child released (or never waiting) succeeds, in
			// stage order, until nothing is left to run.
			for _, stage := range []string{"up", "down", "more"} {
				for _, id := range f.stageRuns(stage) {
					if r, _ := f.GetRun(context.Background(), id); r.Status == jobs.StatusQueued && !r.Waiting() {
						f.end(t, d, id, jobs.StatusSucceeded)
						f.settle(t, d)
					}
				}
			}
			pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
			down, more := pr.StageState("down"), pr.StageState("more")
			if down.Status != c.down || down.Reason != c.downReason {
				t.Errorf("down %s %q, want %s %q", down.Status, down.Reason, c.down, c.downReason)
			}
			if more.Status != c.more || more.Reason != c.moreReason {
				t.Errorf("more %s %q, want %s %q", more.Status, more.Reason, c.more, c.moreReason)
			}
			// Either way something upstream failed: oneFailed runs,
			// noneFailed does not.
			if s := statuses(pr); s["notify"] != jobs.StatusRunning || s["join"] != jobs.StatusSkipped {
				t.Errorf("notify %s, join %s; want RUNNING, SKIPPED", s["notify"], s["join"])
			}
			// A stage that failed as it started stopped what it had
			// submitted: none of its children runs.
			if r := c.refuse; r != nil {
				for _, id := range f.stageRuns(r.Stage) {
					if got, _ := f.GetRun(context.Background(), id); got.Status != jobs.StatusCanceled {
						t.Errorf("%s run %s %s after its stage failed to start, want CANCELED", r.Stage, id, got.Status)
					}
				}
			}
		})
	}
}

// TestDAGSequentialFailsMidSubmission: the siblings of the N_TO_N case
// in a sequential array and the stages after it under trigger rules end
// the same whenever the failure came against the submission of the
// children: a child that fails (before the next child is submitted, or
// once all were) leaves the later ones not run, the stage FAILED; a
// stage refused at any child FAILS with the refusal, stopping what it
// submitted. Either way the stages after it read one FAILED stage:
// allSuccess is SKIPPED, oneFailed and allDone run.
func TestDAGSequentialFailsMidSubmission(t *testing.T) {
	const src = `
name: seq
stages:
  - {name: a, taskDefinition: t, arraySize: 3, arrayOrder: sequential}
  - {name: after, taskDefinition: t, dependsOn: [a]}
  - {name: notify, taskDefinition: t, dependsOn: [a], triggerRule: oneFailed}
  - {name: cleanup, taskDefinition: t, dependsOn: [a], triggerRule: allDone}
`
	const notRun = "1 of 3 runs failed; 2 of 3 runs not run after a[0] FAILED"
	const refused = "task definition missing: not registered"
	for _, c := range []struct {
		name         string
		refuse, fail int // at child i's submission; -1 never (fail: once all were)
		reason       string
	}{
		{"a[0] fails at a[1]'s submission", -1, 1, notRun},
		{"a[0] fails at a[2]'s submission", -1, 2, notRun},
		{"a[0] fails once all were submitted", -1, -1, notRun},
		{"a refused at its child 0", 0, -2, refused},
		{"a refused at its child 1", 1, -2, refused},
		{"a refused at its child 2", 2, -2, refused},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			d := NewDAG(f, f, f)
			f.beforeSubmit = func(req *jobs.SubmitRequest) {
				if at(req, "a", c.refuse) {
					req.TaskDefinition = []byte(`"missing"`)
				}
				if at(req, "a", c.fail) {
					f.endDuring(f.stageRuns("a")[0], jobs.StatusFailed)
				}
			}
			start(t, f, d, src, nil)
			if c.fail == -1 {
				f.end(t, d, f.stageRuns("a")[0], jobs.StatusFailed)
			}
			f.tellEnded(d)
			f.settle(t, d)
			if got := f.released("a"); c.refuse < 0 && !slices.Equal(got, []int{0}) {
				t.Errorf("released %v, want [0]", got)
			}
			pr, _ := f.GetPipelineRun(context.Background(), "pr-1")
			if a := pr.StageState("a"); a.Status != jobs.StatusFailed || a.Reason != c.reason {
				t.Errorf("a %s %q, want FAILED %q", a.Status, a.Reason, c.reason)
			}
			if s := statuses(pr); s["after"] != jobs.StatusSkipped || s["notify"] != jobs.StatusRunning || s["cleanup"] != jobs.StatusRunning {
				t.Errorf("after %s, notify %s, cleanup %s; want SKIPPED, RUNNING, RUNNING", s["after"], s["notify"], s["cleanup"])
			}
			for _, id := range f.stageRuns("a") {
				if r, _ := f.GetRun(context.Background(), id); !r.Status.Terminal() {
					t.Errorf("a's run %s %s, want ended", id, r.Status)
				}
			}
		})
	}
}
