package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestPipelineTriggerRules runs samples/pipelines/notify-on-failure.yaml
// with transform failing: load is SKIPPED, notify (triggerRule oneFailed
// on load) runs because load was skipped for transform's failure
// (Airflow's upstream_failed), cleanup (allDone) runs after notify, and
// the pipeline run ends FAILED all the same (attached: exit 1). Then a
// run where all succeeds: notify is SKIPPED, cleanup runs, the run
// SUCCEEDED. pipeline describe, its JSON and a dry run show the rules; a
// condition under a rule is refused at apply, naming the field.
func TestPipelineTriggerRules(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../samples/pipelines/notify-on-failure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := startUp(t)
	in.applyPipeline("notify-on-failure", string(src))
	out, errOut, code := in.gantry("pipeline", "run", "notify-on-failure", "--param", "fail=transform")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (the run FAILED)\n%s\n%s", code, out, errOut)
	}
	id := in.runsOf("notify-on-failure")[0].PipelineRunID
	pr := in.pipelineRun(id)
	s := pr.StageStatuses()
	if pr.Status != jobs.StatusFailed || s["extract"] != jobs.StatusSucceeded || s["transform"] != jobs.StatusFailed ||
		s["load"] != jobs.StatusSkipped || s["notify"] != jobs.StatusSucceeded || s["cleanup"] != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s, stages %v", pr.Status, s)
	}
	load, notify, cleanup := pr.StageState("load"), pr.StageState("notify"), pr.StageState("cleanup")
	if load.Reason != "dependency transform ended FAILED; condition success cannot hold" || len(load.Runs) != 0 {
		t.Errorf("load: %q with %d runs", load.Reason, len(load.Runs))
	}
	if len(notify.Runs) != 1 || len(cleanup.Runs) != 1 || cleanup.StartedAt == nil || notify.FinishedAt == nil ||
		cleanup.StartedAt.Before(*notify.FinishedAt) {
		t.Errorf("notify %d runs, ended %v; cleanup %d runs, started %v: want cleanup after notify", len(notify.Runs),
			notify.FinishedAt, len(cleanup.Runs), cleanup.StartedAt)
	}
	if !pr.Spec.UpstreamFailed("load", s, pr.Runless()) {
		t.Error("load does not count as upstream-failed")
	}
	logs, _, _ := in.gantry("logs", id, "--stage", "notify")
	if want := "notify: notify-on-failure run " + id + " failed"; !strings.Contains(logs, want) {
		t.Errorf("notify's logs lack %q:\n%s", want, logs)
	}
	// The REASON of pipeline runs names the stage that failed the run, not
	// notify nor cleanup.
	if runs, _, _ := in.gantry("pipeline", "runs", "notify-on-failure"); !strings.Contains(runs, "transform: 1 of 1 runs failed") {
		t.Errorf("pipeline runs does not name transform:\n%s", runs)
	}

	// Everything succeeds: notify has no failure to tell of.
	if out, errOut, code := in.gantry("pipeline", "run", "notify-on-failure"); code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	var second *jobs.PipelineRun
	for _, r := range in.runsOf("notify-on-failure") {
		if r.PipelineRunID != id {
			second = in.pipelineRun(r.PipelineRunID)
		}
	}
	if s := second.StageStatuses(); second.Status != jobs.StatusSucceeded || s["load"] != jobs.StatusSucceeded ||
		s["notify"] != jobs.StatusSkipped || s["cleanup"] != jobs.StatusSucceeded ||
		second.StageState("notify").Reason != "no dependency failed (triggerRule oneFailed)" {
		t.Fatalf("second run %s: %v, notify %q", second.Status, s, second.StageState("notify").Reason)
	}

	// describe shows the rules where it shows the dependencies.
	desc, _, _ := in.gantry("pipeline", "describe", "notify-on-failure")
	for _, want := range []string{"load (triggerRule oneFailed)", "load, notify (triggerRule allDone)", "transform(success)"} {
		if !strings.Contains(desc, want) {
			t.Errorf("pipeline describe lacks %q:\n%s", want, desc)
		}
	}
	js, _, _ := in.gantry("pipeline", "describe", "notify-on-failure", "-o", "json")
	var p jobs.Pipeline
	if err := json.Unmarshal([]byte(js), &p); err != nil || p.Stage("notify") == nil || p.Stage("notify").TriggerRule != jobs.RuleOneFailed {
		t.Errorf("describe -o json: %v\n%s", err, js)
	}

	// A dry run shows a changed rule; a condition under a rule is refused.
	write := func(name, src string) string {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(src, "gantry/samples:latest", in.image)), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	changed := strings.Replace(string(src), "\n    triggerRule: oneFailed\n", "\n    triggerRule: allFailed\n", 1)
	out, errOut, code = in.gantry("pipeline", "apply", "--dry-run", write("changed.yaml", changed))
	if want := "stages[3](notify).triggerRule: oneFailed -> allFailed"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("apply --dry-run: exit %d, want %q:\n%s%s", code, want, out, errOut)
	}
	bad := strings.Replace(string(src), "dependsOn: [load]\n    triggerRule: oneFailed", "dependsOn: [{stage: load, condition: failure}]\n    triggerRule: oneFailed", 1)
	out, errOut, code = in.gantry("pipeline", "apply", write("bad.yaml", bad))
	if want := "stages[3](notify).triggerRule: oneFailed decides from how the dependencies ended: dependsOn[0] (load) cannot have condition failure too"; code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("apply of a condition under a rule: exit %d, want %q:\n%s%s", code, want, out, errOut)
	}
}
