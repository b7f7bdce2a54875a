package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
	"github.com/gantry-dev/gantry/worker/docker"
)

// extract finds nothing to do and says so with exit 99, its
// skipOnExitCode; its retryStrategy would try it again on a failure.
const skippingPipeline = `
name: quiet-day
stages:
  - name: extract
    skipOnExitCode: 99
    retryStrategy: {attempts: 3}
    taskDefinition: {family: quiet-extract, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo no new files today; exit 99']}]}
  - name: load
    dependsOn: [extract]
    taskDefinition: {family: quiet-load, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo loading']}]}
`

// TestAttachedPipelineRunWithAStageThatSkipsItself: extract exits 99,
// its skipOnExitCode: the attached gantry pipeline run exits 0, the run
// SUCCEEDED; extract is SKIPPED saying why after one attempt (its run
// FAILED with exit 99), load SKIPPED without a run or a container;
// describe and pipeline runs say so.
func TestAttachedPipelineRunWithAStageThatSkipsItself(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.applyPipeline("quiet-day", skippingPipeline)
	out, errOut, code := in.gantry("pipeline", "run", "quiet-day")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	id := in.runsOf("quiet-day")[0].PipelineRunID
	for _, want := range []string{"extract        SKIPPED", "exited 99 (skipOnExitCode): skipped",
		"load           SKIPPED", "dependency extract ended SKIPPED; condition success cannot hold", "pipeline run " + id + " SUCCEEDED"} {
		if !strings.Contains(out, want) {
			t.Errorf("attached output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(errOut, "failed") {
		t.Errorf("stderr speaks of a failure:\n%s", errOut)
	}

	pr := in.pipelineRun(id)
	extract, load := pr.StageState("extract"), pr.StageState("load")
	if pr.Status != jobs.StatusSucceeded || extract.Status != jobs.StatusSkipped || extract.Reason != "exited 99 (skipOnExitCode): skipped" ||
		load.Status != jobs.StatusSkipped || len(load.Runs) != 0 {
		t.Fatalf("pipeline run %s, extract %s %q, load %s with %d runs", pr.Status, extract.Status, extract.Reason, load.Status, len(load.Runs))
	}
	runID := extract.Runs[0].RunID
	r := in.describe(runID)
	if r.Status != jobs.StatusFailed || r.ExitCode == nil || *r.ExitCode != 99 || len(r.Attempts) != 1 ||
		!strings.Contains(r.StoppedReason, "not retried: exit code 99 is in skipOnExitCode of stage extract") {
		t.Fatalf("extract's run %s exit %v after %d attempts: %q", r.Status, r.ExitCode, len(r.Attempts), r.StoppedReason)
	}

	// The only run is extract's: load's container was never made.
	list, _, _ := in.gantry("ps", "--all", "-o", "json")
	var runs []jobs.Run
	if err := json.Unmarshal([]byte(list), &runs); err != nil || len(runs) != 1 || runs[0].RunID != runID {
		t.Fatalf("ps --all: %v, want only %s:\n%s", err, runID, list)
	}
	cli := sampletest.Docker(t)
	left, err := cli.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", sampletest.LabelKey+"="+in.label))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range left {
		if c.Labels[docker.LabelRun] != runID {
			t.Errorf("container %s of run %s, not extract's", c.ID, c.Labels[docker.LabelRun])
		}
	}

	desc, _, _ := in.gantry("describe", id)
	if !strings.Contains(desc, "SKIPPED") || !strings.Contains(desc, "exited 99 (skipOnExitCode): skipped") {
		t.Errorf("describe %s does not show extract skipped and why:\n%s", id, desc)
	}
	if out, _, _ := in.gantry("pipeline", "describe", "quiet-day"); !strings.Contains(out, "Skip codes of extract:") ||
		!strings.Contains(out, "99 (skipOnExitCode: SKIPPED, not retried)") {
		t.Errorf("pipeline describe does not show extract's skipOnExitCode:\n%s", out)
	}
	if out, _, _ := in.gantry("pipeline", "runs", "quiet-day"); !strings.Contains(out, "extract=SKIPPED load=SKIPPED") ||
		!strings.Contains(out, "extract: exited 99 (skipOnExitCode): skipped") {
		t.Errorf("pipeline runs does not show the skip:\n%s", out)
	}
}

// TestPipelineArraySizeFromOutput runs samples/pipelines/per-file.yaml:
// extract writes FILES=3 and transform fans out to 3 children, each told
// its index and the size and reading its own file; pipeline describe
// shows where the size comes from and gantry logs pr-<id> labels each
// child.
func TestPipelineArraySizeFromOutput(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../samples/pipelines/per-file.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := startUp(t)
	in.applyPipeline("per-file", string(src))
	if out, errOut, code := in.gantry("pipeline", "run", "per-file"); code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	id := in.runsOf("per-file")[0].PipelineRunID
	out, errOut, code := in.gantry("logs", id, "--stage", "transform", "--stage", "load")
	if want := "transform[0] | file 0 of 3: north,100\ntransform[1] | file 1 of 3: south,200\ntransform[2] | file 2 of 3: east,300\n" +
		"load | loading 3 totals\n"; code != 0 || out != want {
		t.Fatalf("logs %s --stage transform --stage load: exit %d\n%s%s\nwant\n%s", id, code, out, errOut, want)
	}
	if out, _, _ := in.gantry("pipeline", "describe", "per-file"); !strings.Contains(out, "extract.FILES") {
		t.Errorf("pipeline describe does not show where transform's size comes from:\n%s", out)
	}
}
