package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// A run waiting for a place (maxActiveRuns) says why: in gantry pipeline
// runs, in describe, on the live view's pipeline row and, once per
// reason, on an attached run's stderr; a run that started says nothing
// of it.
func TestWaitingPipelineRunSaysWhy(t *testing.T) {
	const why = "waiting: 2 of 2 active runs of daily-sales (maxActiveRuns)"
	pr := &jobs.PipelineRun{PipelineRunID: "pr-1", Pipeline: "daily-sales", Status: jobs.StatusPending, StatusReason: why,
		CreatedAt: time.Now(), Stages: []jobs.StageState{{Name: "extract", Status: jobs.StatusPending, Runs: []jobs.StageRun{}}}}
	if got := runsReason(pr); got != why {
		t.Errorf("pipeline runs REASON %q, want %q", got, why)
	}
	if got := pipelineReason(pr, time.Now()); got != why {
		t.Errorf("live row %q, want %q", got, why)
	}
	var b bytes.Buffer
	if err := describePipelineRun(&b, pr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Status reason:\t"+why+"\n") {
		t.Errorf("describe:\n%s", b.String())
	}
	var stderr bytes.Buffer
	tell := waitTeller("pr-1", &stderr)
	tell(pr)
	tell(pr) // the same reason again: not repeated
	other := *pr
	other.StatusReason = "waiting: 3 of 2 active runs of daily-sales (maxActiveRuns)"
	tell(&other)
	started := *pr
	started.Status, started.StatusReason = jobs.StatusRunning, ""
	tell(&started)
	want := "pipeline run pr-1 is PENDING: " + why + "\npipeline run pr-1 is PENDING: " + other.StatusReason + "\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	b.Reset()
	if err := describePipelineRun(&b, &started); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "Status reason") || runsReason(&started) != "" {
		t.Errorf("a started run still says it waits:\n%s", b.String())
	}
}
