package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

const noGPU = "no worker in cluster default has labels gpu=t4"

// waitingStageRun is a pipeline run whose stage cons is RUNNING and whose
// run waits QUEUED, no worker having the label it asks for, and whose
// array stage shards has two of three runs waiting so and one running.
func waitingStageRun() *jobs.PipelineRun {
	now := time.Now()
	idx := func(i int) *int { return &i }
	return &jobs.PipelineRun{PipelineRunID: "pr-1", Pipeline: "cons", Status: jobs.StatusRunning, CreatedAt: now, StartedAt: &now,
		Stages: []jobs.StageState{
			{Name: "cons", Status: jobs.StatusRunning, StartedAt: &now, Runs: []jobs.StageRun{
				{RunID: "01cons", Status: jobs.StatusQueued, Attempts: 1, StatusReason: noGPU}}},
			{Name: "shards", Status: jobs.StatusRunning, StartedAt: &now, Runs: []jobs.StageRun{
				{RunID: "01s0", ArrayIndex: idx(0), Status: jobs.StatusQueued, Attempts: 1, StatusReason: noGPU},
				{RunID: "01s1", ArrayIndex: idx(1), Status: jobs.StatusRunning, Attempts: 1},
				{RunID: "01s2", ArrayIndex: idx(2), Status: jobs.StatusQueued, Attempts: 1, StatusReason: noGPU}}},
			{Name: "load", Status: jobs.StatusPending, Runs: []jobs.StageRun{}},
		}}
}

// A stage RUNNING whose runs wait says why where the pipeline run is
// looked at: describe pr-... on each run's row, gantry pipeline runs'
// REASON, the live view's stage row, and, once per reason and stage, an
// attached pipeline run's stderr, as gantry run tells of a queued run.
func TestWaitingStageRunsSayWhy(t *testing.T) {
	pr := waitingStageRun()
	var b bytes.Buffer
	if err := describePipelineRun(&b, pr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"cons\tRUNNING\t01cons\t-\tQUEUED\t1\t-\t" + noGPU + "\n",
		"shards\tRUNNING\t01s0\t0\tQUEUED\t1\t-\t" + noGPU + "\n",
		"shards\tRUNNING\t01s1\t1\tRUNNING\t1\t-\t-\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("describe lacks %q:\n%s", want, b.String())
		}
	}
	if got, want := runsReason(pr), "cons: "+noGPU+"; shards: 2 of 3 runs: "+noGPU; got != want {
		t.Errorf("pipeline runs REASON %q, want %q", got, want)
	}

	var live bytes.Buffer
	v := &stageView{w: &live, st: style{tty: true, width: 200}}
	v.draw(pr, time.Now())
	for _, want := range []string{noGPU, "2 of 3 runs: " + noGPU} {
		if !strings.Contains(live.String(), want) {
			t.Errorf("live view lacks %q:\n%s", want, live.String())
		}
	}

	var stderr bytes.Buffer
	tell := waitTeller("pr-1", &stderr)
	tell(pr)
	tell(pr) // the same reasons again: not repeated
	moved := waitingStageRun()
	moved.Stages[0].Runs[0].StatusReason = "no live worker in cluster default"
	tell(moved)
	placed := waitingStageRun()
	placed.Stages[0].Runs[0].Status, placed.Stages[0].Runs[0].StatusReason = jobs.StatusRunning, ""
	tell(placed) // placed: nothing to tell
	tell(pr)     // queued again (a retry): told again
	want := "stage cons: run 01cons is queued: " + noGPU + "\n" +
		"stage shards: 2 of 3 runs are queued: " + noGPU + "\n" +
		"stage cons: run 01cons is queued: no live worker in cluster default\n" +
		"stage cons: run 01cons is queued: " + noGPU + "\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
}

func TestStageWaitReason(t *testing.T) {
	q := func(reason string) jobs.StageRun {
		return jobs.StageRun{Status: jobs.StatusQueued, StatusReason: reason}
	}
	for _, tc := range []struct {
		name string
		st   jobs.StageState
		want string
	}{
		{"one run", jobs.StageState{Status: jobs.StatusRunning, Runs: []jobs.StageRun{q(noGPU)}}, noGPU},
		{"none says", jobs.StageState{Status: jobs.StatusRunning, Runs: []jobs.StageRun{q(""), {Status: jobs.StatusRunning}}}, ""},
		{"several reasons", jobs.StageState{Status: jobs.StatusRunning, Runs: []jobs.StageRun{q(noGPU), q("pool"), q(noGPU), q("")}},
			"2 of 4 runs: " + noGPU + " (1 more: other reasons)"},
		{"stage not running", jobs.StageState{Status: jobs.StatusPending, Runs: []jobs.StageRun{q(noGPU)}}, ""},
		{"ended run", jobs.StageState{Status: jobs.StatusRunning, Runs: []jobs.StageRun{{Status: jobs.StatusCanceled, StatusReason: noGPU}}}, ""},
	} {
		if got := stageWaitReason(&jobs.PipelineRun{}, &tc.st); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestStageWaitReasonOutputNotFinal: notify (oneFailed on b) may run, b
// having been skipped for x's failure, but reads an output of a, which
// still runs: it waits PENDING for a, and describe, pipeline runs and
// the web UI say so, where they would show no reason at all.
func TestStageWaitReasonOutputNotFinal(t *testing.T) {
	p, err := jobs.ParsePipeline([]byte(`
name: outwait
stages:
  - {name: a, taskDefinition: t}
  - {name: x, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a, x]}
  - {name: notify, taskDefinition: t, dependsOn: [b], triggerRule: oneFailed, when: {output: a.MODE, equals: full}}
  - {name: after, taskDefinition: t, dependsOn: [notify]}
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	pr := &jobs.PipelineRun{PipelineRunID: "pr-1", Pipeline: "outwait", Status: jobs.StatusRunning, CreatedAt: now, StartedAt: &now, Spec: *p,
		Stages: []jobs.StageState{
			{Name: "a", Status: jobs.StatusRunning, StartedAt: &now, Runs: []jobs.StageRun{{RunID: "01a", Status: jobs.StatusRunning, Attempts: 1}}},
			{Name: "x", Status: jobs.StatusFailed, StartedAt: &now, FinishedAt: &now, Reason: "1 of 1 runs failed",
				Runs: []jobs.StageRun{{RunID: "01x", Status: jobs.StatusFailed, Attempts: 1}}},
			{Name: "b", Status: jobs.StatusSkipped, FinishedAt: &now, Reason: "dependency x ended FAILED; condition success cannot hold"},
			{Name: "notify", Status: jobs.StatusPending},
			{Name: "after", Status: jobs.StatusPending},
		}}
	const want = "waiting for a to end, to read a.MODE (its when)"
	if got := stageWaitReason(pr, pr.StageState("notify")); got != want {
		t.Errorf("notify: %q, want %q", got, want)
	}
	if got := stageWaitReason(pr, pr.StageState("after")); got != "" {
		t.Errorf("after, waiting for its dependency: %q, want none", got)
	}
	var b bytes.Buffer
	if err := describePipelineRun(&b, pr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), want) {
		t.Errorf("describe lacks %q:\n%s", want, b.String())
	}
	if got := runsReason(pr); !strings.Contains(got, "notify: "+want) {
		t.Errorf("pipeline runs' reason %q, want it to say notify: %s", got, want)
	}
	if got := renderUI(t, "pipelinerun", pipelineRunBody{Run: pr, Stages: stageRowsOf(pr)}); !strings.Contains(got, want) {
		t.Errorf("the web UI's pipeline run page lacks %q:\n%s", want, got)
	}
}
