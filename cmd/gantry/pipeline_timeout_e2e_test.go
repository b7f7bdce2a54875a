package main

import (
	"context"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
)

const sleepyPipeline = `
name: sleepy
timeoutSeconds: 2
stages:
  - name: nap
    taskDefinition: {family: sleepy-nap, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo ready; sleep 60']}]}
  - name: alert
    dependsOn: [{stage: nap, condition: failure}]
    taskDefinition: {family: sleepy-alert, containerDefinitions: [{name: main, image: gantry/samples:latest, command: ['true']}]}
`

// TestAttachedPipelineRunTimesOut: an attached gantry pipeline run of a
// pipeline with timeoutSeconds: 2 whose stage sleeps 60s exits 124, saying
// the run timed out; the stage's run is stopped (CANCELED, its container
// gone), the failure stage is not started, and the run ends FAILED with
// stopCode Timeout. gantry wait of it exits 124 too.
func TestAttachedPipelineRunTimesOut(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.applyPipeline("sleepy", sleepyPipeline)
	out, errOut, code := in.gantry("pipeline", "run", "sleepy")
	if code != exitTimeout || !strings.Contains(errOut, "pipeline run timed out after 2s (timeoutSeconds 2)") {
		t.Fatalf("exit %d, want %d saying it timed out\n%s\n%s", code, exitTimeout, out, errOut)
	}
	id := in.runsOf("sleepy")[0].PipelineRunID
	if !strings.Contains(out, "pipeline run "+id+" FAILED") {
		t.Errorf("attached output does not end FAILED:\n%s", out)
	}
	pr := in.pipelineRun(id)
	nap, alert := pr.StageState("nap"), pr.StageState("alert")
	if pr.Status != jobs.StatusFailed || pr.StopCode != jobs.StopTimeout || nap.Status != jobs.StatusCanceled ||
		alert.Status != jobs.StatusCanceled || len(alert.Runs) != 0 {
		t.Fatalf("pipeline run %s stopCode %q, nap %s, alert %s with %d runs", pr.Status, pr.StopCode, nap.Status, alert.Status, len(alert.Runs))
	}
	runID := nap.Runs[0].RunID
	if r := in.describe(runID); r.Status != jobs.StatusCanceled || !strings.Contains(r.StoppedReason, id+" timed out") {
		t.Fatalf("stage run %s %q, want CANCELED saying %s timed out", r.Status, r.StoppedReason, id)
	}
	cli := sampletest.Docker(t)
	waitFor(t, "the stage run's container to be removed", func() bool {
		list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", "gantry.run="+runID))})
		if err != nil {
			t.Fatal(err)
		}
		return len(list) == 0
	})
	if _, errOut, code := in.gantry("wait", id); code != exitTimeout {
		t.Errorf("gantry wait %s: exit %d, want %d: %s", id, code, exitTimeout, errOut)
	}
	if out, _, _ := in.gantry("pipeline", "runs", "sleepy"); !strings.Contains(out, "timed out after 2s") {
		t.Errorf("pipeline runs does not say why the run stopped:\n%s", out)
	}
	if out, _, _ := in.gantry("pipeline", "describe", "sleepy"); !strings.Contains(out, "2s (timeoutSeconds 2, each run)") {
		t.Errorf("pipeline describe does not show the timeout:\n%s", out)
	}
}
