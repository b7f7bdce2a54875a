package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// retriedArrayRun is a pipeline run whose file lists load first, whose
// extract is an array stage (its runs stored out of index order) and
// whose transform was retried once.
func retriedArrayRun() *jobs.PipelineRun {
	zero, one := 0, 1
	return &jobs.PipelineRun{PipelineRunID: "pr-1", Status: jobs.StatusRunning,
		Spec: jobs.Pipeline{Name: "etl", Stages: []jobs.Stage{
			{Name: "load", DependsOn: []jobs.Dependency{{Stage: "transform"}}},
			{Name: "extract", ArraySize: jobs.Fixed(2)},
			{Name: "transform", DependsOn: []jobs.Dependency{{Stage: "extract"}}},
		}},
		Stages: []jobs.StageState{
			{Name: "load", Status: jobs.StatusPending},
			{Name: "extract", Status: jobs.StatusSucceeded, Runs: []jobs.StageRun{
				{RunID: "ex1", ArrayIndex: &one}, {RunID: "ex0", ArrayIndex: &zero}}},
			{Name: "transform", Status: jobs.StatusRunning, Try: 2, Runs: []jobs.StageRun{{RunID: "tr2"}},
				EarlierTries: []jobs.StageTry{{Try: 1, Status: jobs.StatusFailed, Runs: []jobs.StageRun{{RunID: "tr1"}}}}},
		}}
}

func TestStageLogsOrder(t *testing.T) {
	labels := func(list []stageLog) string {
		var b strings.Builder
		for _, sl := range list {
			b.WriteString(sl.label + "=" + sl.runID + ";")
		}
		return b.String()
	}
	pr := retriedArrayRun()
	// DAG order, an array's children by index, a retried stage's earlier
	// try first, named as gantry describe names them; no run, no line.
	if got, want := labels(stageLogs(pr, nil)), "extract[0]=ex0;extract[1]=ex1;transform (try 1)=tr1;transform (try 2)=tr2;"; got != want {
		t.Errorf("stageLogs:\n got %s\nwant %s", got, want)
	}
	if got, want := labels(stageLogs(pr, []string{"transform", "load"})), "transform (try 1)=tr1;transform (try 2)=tr2;"; got != want {
		t.Errorf("stageLogs --stage transform --stage load:\n got %s\nwant %s", got, want)
	}
	// pipelines.status's run has no spec and its stages in DAG order
	// already: kept as they come.
	pr.Spec = jobs.Pipeline{}
	pr.Stages = []jobs.StageState{pr.Stages[1], pr.Stages[2], pr.Stages[0]}
	if got, want := labels(stageLogs(pr, nil)), "extract[0]=ex0;extract[1]=ex1;transform (try 1)=tr1;transform (try 2)=tr2;"; got != want {
		t.Errorf("stageLogs without spec:\n got %s\nwant %s", got, want)
	}
	// A stage that was not retried has no try in its label.
	pr.Stages[1] = jobs.StageState{Name: "transform", Runs: []jobs.StageRun{{RunID: "tr"}}}
	if got, want := labels(stageLogs(pr, []string{"transform"})), "transform=tr;"; got != want {
		t.Errorf("stageLogs of a stage never retried: %s, want %s", got, want)
	}
}

func TestCheckStages(t *testing.T) {
	pr := retriedArrayRun()
	if err := checkStages(pr, []string{"load", "extract"}); err != nil {
		t.Errorf("known stages: %v", err)
	}
	err := checkStages(pr, []string{"extract", "transfrom", "lod", "lod"})
	want := `--stage: pipeline run pr-1 has no stages "transfrom", "lod"; its stages: extract, transform, load`
	if err == nil || err.Error() != want {
		t.Errorf("unknown stages: %v\nwant %s", err, want)
	}
	if err := checkStages(pr, []string{"x"}); err == nil || !strings.Contains(err.Error(), `has no stage "x"; its stages: extract, transform, load`) {
		t.Errorf("one unknown stage: %v", err)
	}
}

// TestLabelledLines: a stage run's lines start with its label, before
// the timestamp; a line in pieces is one line; a last line its container
// wrote without a newline gets one, so that the next run's first line
// starts a line of its own, with --no-prefix too.
func TestLabelledLines(t *testing.T) {
	at := time.Date(2026, 12, 6, 6, 14, 18, 123456789, time.UTC)
	batches := []*jobs.LogBatch{
		{Container: "main", Time: at, Lines: []jobs.LogLine{{Stream: jobs.Stdout, Text: "one"},
			{Stream: jobs.Stdout, Text: "lo", Partial: true}, {Stream: jobs.Stdout, Text: "ng"},
			{Stream: jobs.Stderr, Text: "oops"}, {Stream: jobs.Stdout, Text: "last", NoNewline: true}}},
	}
	for _, tc := range []struct {
		label      string
		timestamps bool
		out, err   string
	}{
		{"transform[2]", false, "transform[2] | one\ntransform[2] | long\ntransform[2] | last\n", "transform[2] | oops\n"},
		{"load (try 1)", true, "load (try 1) | 2026-12-06T06:14:18.123456789Z one\nload (try 1) | 2026-12-06T06:14:18.123456789Z long\nload (try 1) | 2026-12-06T06:14:18.123456789Z last\n",
			"load (try 1) | 2026-12-06T06:14:18.123456789Z oops\n"},
		{"", false, "one\nlong\nlast\n", "oops\n"}, // --no-prefix
	} {
		var out, errOut bytes.Buffer
		p := newLinePrinter(&out, &errOut, false)
		p.label, p.whole, p.timestamps = tc.label, true, tc.timestamps
		for _, b := range batches {
			if err := p.batch(b); err != nil {
				t.Fatal(err)
			}
		}
		if out.String() != tc.out || errOut.String() != tc.err {
			t.Errorf("label %q: stdout %q, stderr %q\nwant %q, %q", tc.label, out.String(), errOut.String(), tc.out, tc.err)
		}
	}
}
