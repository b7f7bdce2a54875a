package scheduler

import (
	"context"
	"slices"
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
	if st := pr.StageState("down"); st.Status != jobs.StatusSkipped || st.Reason != "dependency up ended FAILED without a child: N_TO_N cannot hold" {
		t.Fatalf("down %s %q", st.Status, st.Reason)
	}
}
