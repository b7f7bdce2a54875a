package main

import (
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

const gatedPipeline = `
name: gated
maxActiveRuns: 1
parameters: {nap: "0"}
stages:
  - name: only
    taskDefinition: {family: gated, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'sleep ${nap}']}]}
`

// TestAttachedPipelineRunWaitsForMaxActiveRuns: with maxActiveRuns: 1 and
// a run busy, an attached gantry pipeline run says on stderr that its run
// waits, and why, as gantry pipeline runs does; it starts once the busy
// run ends (stopped here) and exits 0 when it succeeds.
func TestAttachedPipelineRunWaitsForMaxActiveRuns(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.applyPipeline("gated", gatedPipeline)
	busy := strings.TrimSpace(in.mustGantry("pipeline", "run", "gated", "-d", "--param", "nap=300"))
	in.waitPipeline(busy, func(pr *jobs.PipelineRun) bool { return pr.Stages[0].Status == jobs.StatusRunning })

	cmd := exec.Command(gantryBin, "pipeline", "run", "gated")
	cmd.Env = in.env
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() }) // if the test fails before it ends
	const why = "waiting: 1 of 1 active runs of gated (maxActiveRuns)"
	waitFor(t, "the attached run to say it waits", func() bool { return strings.Contains(stderr.String(), "is PENDING: "+why) })
	if out, _, _ := in.gantry("pipeline", "runs", "gated"); !strings.Contains(out, why) {
		t.Errorf("pipeline runs does not say why the run waits:\n%s", out)
	}
	if out, errOut, code := in.gantry("stop", busy); code != 0 {
		t.Fatalf("stop %s: exit %d: %s%s", busy, code, out, errOut)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("attached run: %v\n%s", err, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the attached run did not end after the busy one was stopped\n%s", stderr.String())
	}
	var waited *jobs.PipelineRun
	for _, pr := range in.runsOf("gated") {
		if pr.PipelineRunID != busy {
			waited = &pr
		}
	}
	first := in.pipelineRun(busy)
	if waited == nil || waited.Status != jobs.StatusSucceeded || first.Status != jobs.StatusCanceled ||
		waited.StartedAt.Before(*first.FinishedAt) {
		t.Fatalf("the waiting run %+v started before the busy one (%s) ended at %v", waited, first.Status, first.FinishedAt)
	}
}
