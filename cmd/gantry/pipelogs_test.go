package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
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

// TestFollowingAPipelineRunWaitsForItsRunsToStart: gantry logs -f
// pr-<id> follows a stage run from its start, not while it waits in the
// queue (each followed run holds subscriptions, a consumer and a request
// every 2 s: an array of thousands waiting for a pool held them all);
// a run that starts later is followed then, from its first line, and the
// follow ends with the pipeline run. Against a real server and NATS, the
// test reporting the worker's events (no worker, no Docker).
func TestFollowingAPipelineRunWaitsForItsRunsToStart(t *testing.T) {
	e := startUI(t, httpAuth{})
	ctx := e.ctx
	if _, _, err := e.c.ApplyPipeline(ctx, []byte(`
name: fan
stages:
  - name: extract
    arraySize: 3
    taskDefinition: {family: extract, containerDefinitions: [{name: main, image: i}]}
`)); err != nil {
		t.Fatal(err)
	}
	pr, err := e.c.RunPipeline(ctx, "fan", nil)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if pr, err = e.c.PipelineRunStatus(ctx, pr.PipelineRunID); err == nil && len(pr.StageState("extract").Runs) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("extract has not its 3 runs: %+v %v", pr, err)
		}
	}
	runs := stageLogs(pr, nil)
	// Every request for a run, as the server gets it.
	asked := make(chan string, 1000)
	spy, err := e.nc.Subscribe("gantry.api.runs.>", func(m *nats.Msg) {
		var req struct{ RunID string }
		if json.Unmarshal(m.Data, &req) == nil && req.RunID != "" {
			asked <- req.RunID
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spy.Unsubscribe() })
	seq := map[string]int{}
	report := func(id string, ev *jobs.Event) {
		t.Helper()
		seq[id]++
		ev.RunID, ev.Attempt, ev.Seq, ev.Source, ev.Worker, ev.Time = id, 1, seq[id], jobs.SourceWorker, "w1", time.Now().UTC()
		if err := e.q.Report(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	write := func(id, line string) {
		t.Helper()
		lw := e.q.NewLogWriter(id, 1)
		lw.Line("main", jobs.Stdout, []byte(line))
		if err := lw.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	zero := 0
	succeed := func(id string) {
		report(id, &jobs.Event{Status: jobs.StatusSucceeded, ExitCode: &zero, Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &zero}}})
	}
	waitFor := func(out *syncBuffer, want string) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !strings.Contains(out.String(), want); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in:\n%s", want, out.String())
			}
		}
	}

	report(runs[0].runID, &jobs.Event{Status: jobs.StatusRunning})
	write(runs[0].runID, "first child")
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		p := &pipelineLogs{c: e.c, stdout: &out, stderr: &out, tail: -1}
		done <- p.print(ctx, pr, true)
	}()
	waitFor(&out, "extract[0] | first child")
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for len(asked) > 0 {
		if id := <-asked; id == runs[1].runID || id == runs[2].runID {
			t.Errorf("run %s, still queued, is followed", id)
		}
	}
	// The second child starts while the first is followed: its lines come.
	report(runs[1].runID, &jobs.Event{Status: jobs.StatusRunning})
	write(runs[1].runID, "second child")
	waitFor(&out, "extract[1] | second child")
	succeed(runs[0].runID)
	succeed(runs[1].runID)
	report(runs[2].runID, &jobs.Event{Status: jobs.StatusRunning})
	write(runs[2].runID, "third child")
	succeed(runs[2].runID)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the follow did not end with the pipeline run:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "extract[2] | third child") {
		t.Errorf("the third child's line is missing:\n%s", out.String())
	}
}
