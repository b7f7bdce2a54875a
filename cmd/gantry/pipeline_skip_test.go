package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// skippedRun is a pipeline run whose array stage extract had a child skip
// itself (exit 99) and whose single-run stage check skipped itself.
func skippedRun() *jobs.PipelineRun {
	zero, one, exit99 := 0, 1, 99
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	return &jobs.PipelineRun{PipelineRunID: "pr-1", Pipeline: "etl", Version: 1, Status: jobs.StatusSucceeded,
		StartedAt: &t0, FinishedAt: &t0, Stages: []jobs.StageState{
			{Name: "extract", Status: jobs.StatusSucceeded, Reason: "1 of 2 runs exited 99 (skipOnExitCode): skipped", Runs: []jobs.StageRun{
				{RunID: "r0", ArrayIndex: &zero, Status: jobs.StatusSucceeded, Attempts: 1, ExitCode: &zero},
				{RunID: "r1", ArrayIndex: &one, Status: jobs.StatusFailed, Attempts: 1, ExitCode: &exit99, Skipped: true,
					StoppedReason: "Essential container in task exited"}}},
			{Name: "check", Status: jobs.StatusSkipped, Reason: "exited 99 (skipOnExitCode): skipped", StartedAt: &t0, FinishedAt: &t0,
				Runs: []jobs.StageRun{{RunID: "r2", Status: jobs.StatusFailed, Attempts: 1, ExitCode: &exit99, Skipped: true,
					StoppedReason: "Essential container in task exited"}}},
			{Name: "load", Status: jobs.StatusSkipped, Reason: "dependency check ended SKIPPED; condition success cannot hold"},
		}}
}

// A run that skipped itself is FAILED, as the run ended, and its row says
// why that did not fail its stage.
func TestDescribePipelineRunSaysWhyARunSkipped(t *testing.T) {
	var b bytes.Buffer
	if err := describePipelineRun(&b, skippedRun()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"extract\tSUCCEEDED\tr0\t0\tSUCCEEDED\t1\t0\t-\n",
		"extract\tSUCCEEDED\tr1\t1\tFAILED\t1\t99\texited 99 (skipOnExitCode): skipped\n",
		"check\tSKIPPED\tr2\t-\tFAILED\t1\t99\texited 99 (skipOnExitCode): skipped\n",
		"load\tSKIPPED\t-\t-\t-\t-\t-\tdependency check ended SKIPPED; condition success cannot hold\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("describe does not hold %q:\n%s", want, b.String())
		}
	}
}

// pipeline runs' REASON names the stages that skipped themselves, not
// those skipped after them, and a stopped run's reason comes first.
func TestPipelineRunsReasonNamesStagesThatSkippedThemselves(t *testing.T) {
	pr := skippedRun()
	if got, want := runsReason(pr), "check: exited 99 (skipOnExitCode): skipped"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	pr.StoppedReason = "pipeline run timed out after 2s (timeoutSeconds 2)"
	if got := runsReason(pr); got != pr.StoppedReason {
		t.Errorf("reason of a timed-out run %q", got)
	}
	if got := runsReason(&jobs.PipelineRun{Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusSkipped, Reason: "dependency x"}}}); got != "" {
		t.Errorf("reason of a run without a stage that skipped itself %q", got)
	}
	// A run that failed names the stages that failed it, first.
	pr.StoppedReason, pr.Status = "", jobs.StatusFailed
	pr.Stages = append(pr.Stages, jobs.StageState{Name: "report", Status: jobs.StatusFailed, Reason: "1 of 1 runs failed"},
		jobs.StageState{Name: "notify", Status: jobs.StatusCanceled, Reason: "run r9 canceled"})
	if got, want := runsReason(pr), "report: 1 of 1 runs failed; notify: run r9 canceled; check: exited 99 (skipOnExitCode): skipped"; got != want {
		t.Errorf("reason of a failed run %q, want %q", got, want)
	}
}

// The live view shows the stage SKIPPED with its reason.
func TestStageViewShowsASkippedStagesReason(t *testing.T) {
	var buf bytes.Buffer
	v := &stageView{w: &buf, st: style{tty: true, width: 140}}
	pr := skippedRun()
	v.draw(pr, *pr.FinishedAt)
	for _, want := range []string{"check", "SKIPPED", "exited 99 (skipOnExitCode): skipped", "1 of 2 runs exited 99"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("live view lacks %q:\n%s", want, buf.String())
		}
	}
}
