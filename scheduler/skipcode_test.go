package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// exit ends the current attempt of a run as its worker's event does, the
// server applying it (Run.Apply, which retries the run when its strategy
// says so), and tells the DAG.
func (f *fake) exit(t *testing.T, d *DAG, id string, code int, stopCode string) {
	t.Helper()
	f.mu.Lock()
	r := f.runs[id]
	a := r.Current()
	a.Status, a.Seq = jobs.StatusRunning, a.Seq+1
	r.Status = jobs.StatusRunning
	status := jobs.StatusFailed
	if code == 0 {
		status, stopCode = jobs.StatusSucceeded, ""
	}
	r.Apply(jobs.Event{RunID: id, Attempt: a.Attempt, Seq: a.Seq + 1, Status: status, Time: time.Now(),
		ExitCode: &code, StopCode: stopCode, StoppedReason: "Essential container in task exited"})
	f.mu.Unlock()
	d.RunChanged(context.Background(), clone(r))
}

func (f *fake) pipelineRun(t *testing.T) *jobs.PipelineRun {
	t.Helper()
	pr, err := f.GetPipelineRun(context.Background(), "pr-1")
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

const skipETL = `
name: etl
stages:
  - name: extract
    taskDefinition: extract
    skipOnExitCode: [99, 100]
    retryStrategy: {attempts: 3}
  - {name: load, taskDefinition: load, dependsOn: [extract]}
  - {name: alert, taskDefinition: notify, dependsOn: [{stage: extract, condition: failure}]}
  - {name: cleanup, taskDefinition: cleanup, dependsOn: [{stage: extract, condition: complete}]}
`

// A stage whose run exits with a skipOnExitCode code ends SKIPPED, saying
// so, at once (its retryStrategy not tried); success and failure stages
// after it are skipped, complete ones run, and the pipeline run succeeds.
func TestDAGStageSkipsItself(t *testing.T) {
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, skipETL, nil)
	if got := f.reqs[0].Stage.SkipOnExitCode; len(got) != 2 || got[0] != 99 {
		t.Fatalf("extract's run submitted with skipOnExitCode %v", got)
	}
	ext := f.stageRuns("extract")[0]
	f.exit(t, d, ext, 99, jobs.StopEssentialExited)
	pr := f.pipelineRun(t)
	st := pr.StageState("extract")
	if st.Status != jobs.StatusSkipped || st.Reason != "exited 99 (skipOnExitCode): skipped" {
		t.Fatalf("extract %s %q, want SKIPPED saying why", st.Status, st.Reason)
	}
	if r := st.Runs[0]; r.Status != jobs.StatusFailed || r.Attempts != 1 || !r.Skipped || r.ExitCode == nil || *r.ExitCode != 99 {
		t.Fatalf("extract's run %+v, want FAILED after one attempt, exit 99, skipped", r)
	}
	s := statuses(pr)
	if s["load"] != jobs.StatusSkipped || s["alert"] != jobs.StatusSkipped || s["cleanup"] != jobs.StatusRunning {
		t.Fatalf("after extract skipped itself: %v", s)
	}
	if got, want := pr.StageState("load").Reason, "dependency extract ended SKIPPED; condition success cannot hold"; got != want {
		t.Errorf("load's reason %q, want %q", got, want)
	}
	if n := len(f.stageRuns("load")) + len(f.stageRuns("alert")); n != 0 {
		t.Fatalf("%d runs of skipped stages", n)
	}
	f.exit(t, d, f.stageRuns("cleanup")[0], 0, "")
	if pr := f.pipelineRun(t); pr.Status != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s: %v", pr.Status, statuses(pr))
	}
}

// Other failures are retried as before; the attempt that exits with a
// skip code ends the run, and the stage is skipped. A timeout's exit code
// is no skip, nor is a code the stage does not list.
func TestDAGSkipCodeAfterRetriesAndOtherFailures(t *testing.T) {
	t.Run("after a retry", func(t *testing.T) {
		f := newFake()
		d := NewDAG(f, f, f)
		start(t, f, d, skipETL, nil)
		ext := f.stageRuns("extract")[0]
		f.exit(t, d, ext, 1, jobs.StopEssentialExited)
		if st := f.pipelineRun(t).StageState("extract"); st.Status != jobs.StatusRunning || st.Runs[0].Status != jobs.StatusQueued {
			t.Fatalf("extract after exit 1: %s, run %s; want it retried", st.Status, st.Runs[0].Status)
		}
		f.exit(t, d, ext, 100, jobs.StopEssentialExited)
		st := f.pipelineRun(t).StageState("extract")
		if st.Status != jobs.StatusSkipped || st.Runs[0].Attempts != 2 || st.Reason != "exited 100 (skipOnExitCode): skipped" {
			t.Fatalf("extract %s %q after %d attempts", st.Status, st.Reason, st.Runs[0].Attempts)
		}
	})
	for _, tc := range []struct {
		name     string
		code     int
		stopCode string
	}{
		{"timed out", 99, jobs.StopTimeout},
		{"another code", 98, jobs.StopEssentialExited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			d := NewDAG(f, f, f)
			start(t, f, d, skipETL, nil)
			ext := f.stageRuns("extract")[0]
			for range 3 {
				f.exit(t, d, ext, tc.code, tc.stopCode)
			}
			pr := f.pipelineRun(t)
			if st := pr.StageState("extract"); st.Status != jobs.StatusFailed || st.Runs[0].Attempts != 3 || st.Runs[0].Skipped {
				t.Fatalf("extract %s after %d attempts (skipped %v), want FAILED after 3", st.Status, st.Runs[0].Attempts, st.Runs[0].Skipped)
			}
			if s := statuses(pr); s["alert"] != jobs.StatusRunning || s["load"] != jobs.StatusSkipped {
				t.Fatalf("after extract failed: %v", s)
			}
		})
	}
}

// An array stage is SKIPPED when every child skipped itself; children
// that skipped beside others that succeeded leave it SUCCEEDED (saying how
// many skipped), and its downstream runs; a child that failed otherwise
// fails it. The children end one event at a time, so the earlier ones are
// read as recorded.
func TestDAGArrayStageSkips(t *testing.T) {
	const src = `
name: fan
stages:
  - {name: extract, taskDefinition: extract, arraySize: 3, skipOnExitCode: 99}
  - {name: load, taskDefinition: load, dependsOn: [extract]}
`
	for _, tc := range []struct {
		name       string
		codes      [3]int
		want       jobs.Status
		reason     string
		loadStatus jobs.Status
	}{
		{"all skipped", [3]int{99, 99, 99}, jobs.StatusSkipped, "3 of 3 runs exited 99 (skipOnExitCode): skipped", jobs.StatusSkipped},
		{"some skipped", [3]int{0, 99, 0}, jobs.StatusSucceeded, "1 of 3 runs exited 99 (skipOnExitCode): skipped", jobs.StatusRunning},
		{"none skipped", [3]int{0, 0, 0}, jobs.StatusSucceeded, "", jobs.StatusRunning},
		{"one failed", [3]int{99, 1, 0}, jobs.StatusFailed, "1 of 3 runs failed", jobs.StatusSkipped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			d := NewDAG(f, f, f)
			start(t, f, d, src, nil)
			for i, id := range f.stageRuns("extract") {
				f.exit(t, d, id, tc.codes[i], jobs.StopEssentialExited)
			}
			pr := f.pipelineRun(t)
			st := pr.StageState("extract")
			if st.Status != tc.want || st.Reason != tc.reason {
				t.Fatalf("extract %s %q, want %s %q", st.Status, st.Reason, tc.want, tc.reason)
			}
			for i, r := range st.Runs {
				if r.Skipped != (tc.codes[i] == 99) {
					t.Errorf("child %d (exit %d) skipped %v", i, tc.codes[i], r.Skipped)
				}
			}
			if s := pr.StageState("load").Status; s != tc.loadStatus {
				t.Fatalf("load %s, want %s", s, tc.loadStatus)
			}
			// Advanced again from the store, as after a restart: the same.
			again, err := d.Advance(context.Background(), "pr-1")
			if err != nil || again.StageState("extract").Status != tc.want {
				t.Fatalf("advanced again: %v %v", err, statuses(again))
			}
		})
	}
}

// A retry of a run that failed elsewhere runs the stage that skipped
// itself again, and what follows it; this time it does the work.
func TestDAGRetryRunsSkippedStageAgain(t *testing.T) {
	const src = `
name: p
stages:
  - {name: extract, taskDefinition: extract, skipOnExitCode: [99]}
  - {name: load, taskDefinition: load, dependsOn: [extract]}
  - {name: other, taskDefinition: other}
`
	ctx := context.Background()
	f := newFake()
	d := NewDAG(f, f, f)
	start(t, f, d, src, nil)
	f.exit(t, d, f.stageRuns("extract")[0], 99, jobs.StopEssentialExited)
	f.exit(t, d, f.stageRuns("other")[0], 1, jobs.StopEssentialExited)
	pr := f.pipelineRun(t)
	if pr.Status != jobs.StatusFailed || pr.StageState("extract").Status != jobs.StatusSkipped {
		t.Fatalf("pipeline run %s: %v", pr.Status, statuses(pr))
	}
	f.mu.Lock()
	stored := f.prs["pr-1"]
	stages := RetryStages(stored)
	Retry(stored, stages, time.Now())
	f.mu.Unlock()
	if len(stages) != 3 {
		t.Fatalf("retry runs %v, want extract, load and other", stages)
	}
	if _, err := d.Advance(ctx, "pr-1"); err != nil {
		t.Fatal(err)
	}
	ext := f.stageRuns("extract")
	if len(ext) != 2 {
		t.Fatalf("extract runs %v, want a second", ext)
	}
	f.exit(t, d, ext[1], 0, "")
	f.exit(t, d, f.stageRuns("other")[1], 0, "")
	f.exit(t, d, f.stageRuns("load")[0], 0, "")
	pr = f.pipelineRun(t)
	st := pr.StageState("extract")
	if pr.Status != jobs.StatusSucceeded || st.Status != jobs.StatusSucceeded || st.Reason != "" || len(st.EarlierTries) != 1 ||
		st.EarlierTries[0].Status != jobs.StatusSkipped || !st.EarlierTries[0].Runs[0].Skipped {
		t.Fatalf("after the retry: %s %v; extract %s %q, earlier %+v", pr.Status, statuses(pr), st.Status, st.Reason, st.EarlierTries)
	}
}
