package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// TestPipelineTimeoutFlagIsChecked: a --timeout under a second (0
// included), negative or past 50 years is refused before gantry connects, naming the flag,
// on pipeline run and backfill.
func TestPipelineTimeoutFlagIsChecked(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pipeline", "run", "p", "--timeout", "500ms"}, "--timeout 500ms: must be at least 1s"},
		{[]string{"pipeline", "run", "p", "--timeout", "-1m"}, "--timeout -1m0s: must be at least 1s"},
		{[]string{"pipeline", "run", "p", "--timeout", "500000h"}, "--timeout 500000h0m0s: must be at most"},
		{[]string{"pipeline", "run", "p", "--timeout", "2x"}, `invalid argument "2x" for "--timeout"`},
		{[]string{"pipeline", "backfill", "p", "--from", "2026-01-01", "--to", "2026-01-02", "--timeout", "-5s"},
			"--timeout -5s: must be at least 1s"},
		// 0 would be the file's timeout, not none: refused rather than ignored.
		{[]string{"pipeline", "run", "p", "--timeout", "0s"}, "--timeout 0s: must be at least 1s; leave it out for the pipeline file's timeoutSeconds"},
		{[]string{"pipeline", "backfill", "p", "--from", "2026-01-01", "--to", "2026-01-02", "--timeout", "0"},
			"--timeout 0s: must be at least 1s; leave it out"},
	} {
		err := offline(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestDescribePipelineRunShowsTheTimeout: describe shows the run's
// timeout and, while it runs, when it times out; once timed out, the stop
// code and the reason.
func TestDescribePipelineRunShowsTheTimeout(t *testing.T) {
	started := time.Now().Add(-30 * time.Minute)
	pr := &jobs.PipelineRun{PipelineRunID: "pr-1", Pipeline: "etl", Version: 1, Status: jobs.StatusRunning,
		TimeoutSeconds: 7200, StartedAt: &started, Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusRunning}}}
	var b bytes.Buffer
	if err := describePipelineRun(&b, pr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Timeout:\t2h0m0s (times out at ") {
		t.Errorf("describe of a running run lacks its timeout:\n%s", b.String())
	}
	pr.Status, pr.StopCode, pr.StoppedReason = jobs.StatusFailed, jobs.StopTimeout, "pipeline run timed out after 2h0m0s (timeoutSeconds 7200)"
	b.Reset()
	describePipelineRun(&b, pr)
	for _, want := range []string{"Timeout:\t2h0m0s\n", "Stop code:\tTimeout\n",
		"Stopped reason:\tpipeline run timed out after 2h0m0s (timeoutSeconds 7200)\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("describe of a timed-out run lacks %q:\n%s", want, b.String())
		}
	}
}
