package scheduler

import (
	"context"
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
