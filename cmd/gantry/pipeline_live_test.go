package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func TestStageViewRedrawsInPlace(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	exit3 := 3
	pr := &jobs.PipelineRun{PipelineRunID: "pr-1", Status: jobs.StatusRunning, StartedAt: at(0), Stages: []jobs.StageState{
		{Name: "extract", Status: jobs.StatusRunning, StartedAt: at(0), Runs: []jobs.StageRun{
			{RunID: "r1", Status: jobs.StatusSucceeded, Attempts: 1}, {RunID: "r2", Status: jobs.StatusRunning, Attempts: 2},
			{RunID: "r3", Status: jobs.StatusQueued, Attempts: 1}}},
		{Name: "transform", Status: jobs.StatusPending, Runs: []jobs.StageRun{}},
	}}
	var buf bytes.Buffer
	v := &stageView{w: &buf, st: style{tty: true, width: 100}}
	v.draw(pr, t0.Add(3*time.Second))
	first := buf.String()
	if strings.Contains(first, "\x1b[4A") || !strings.HasSuffix(first, "\x1b[J") {
		t.Fatalf("first drawing moves up or does not clear below: %q", first)
	}
	for _, want := range []string{"STAGE", "ATTEMPTS", "extract", "RUNNING", "1/3", "4", "3s", "transform", "PENDING"} {
		if !strings.Contains(first, want) {
			t.Errorf("first drawing lacks %q:\n%s", want, first)
		}
	}
	// The next drawing goes back over the 4 lines (header, 2 stages, the
	// pipeline) and clears each before writing it.
	buf.Reset()
	pr.Status, pr.FinishedAt = jobs.StatusFailed, at(7*time.Second)
	pr.Stages[0].Status, pr.Stages[0].FinishedAt, pr.Stages[0].Reason = jobs.StatusFailed, at(7*time.Second), "1 of 3 runs failed"
	pr.Stages[0].Runs[1].Status, pr.Stages[0].Runs[1].ExitCode = jobs.StatusFailed, &exit3
	pr.Stages[0].Runs[2].Status = jobs.StatusSucceeded
	pr.Stages[1].Status, pr.Stages[1].Reason = jobs.StatusSkipped, "dependency extract ended FAILED"
	v.draw(pr, t0.Add(time.Minute))
	second := buf.String()
	if !strings.HasPrefix(second, "\x1b[4A\r\x1b[2K") || strings.Count(second, "\r\x1b[2K") != 4 {
		t.Fatalf("second drawing does not redraw the 4 lines in place: %q", second)
	}
	for _, want := range []string{"3/3", "7s", "1 of 3 runs failed", "SKIPPED", "FAILED"} {
		if !strings.Contains(second, want) {
			t.Errorf("second drawing lacks %q:\n%s", want, second)
		}
	}
	for _, l := range strings.Split(second, "\n") {
		if n := len([]rune(strings.TrimPrefix(strings.TrimPrefix(l, "\x1b[4A"), "\r\x1b[2K"))); n > 100 {
			t.Errorf("line wider than the terminal (%d): %q", n, l)
		}
	}
}

func TestLiveStagesTicksAndStops(t *testing.T) {
	var buf syncBuffer
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	show, stop := liveStages(&buf, style{tty: true, width: 80}, time.Millisecond, func() time.Time { return now })
	show(&jobs.PipelineRun{PipelineRunID: "pr-1", Status: jobs.StatusRunning, StartedAt: &now,
		Stages: []jobs.StageState{{Name: "only", Status: jobs.StatusRunning, StartedAt: &now}}})
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(buf.String(), "\x1b[J") < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	n := strings.Count(buf.String(), "\x1b[J")
	if n < 3 {
		t.Fatalf("%d drawings: the ticker does not redraw", n)
	}
	time.Sleep(5 * time.Millisecond)
	if m := strings.Count(buf.String(), "\x1b[J"); m != n {
		t.Fatalf("drew %d times after stop", m-n)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPipelineDurationOfARetriedRun: a retried run's duration counts from
// its latest retry, not from its first start: the hours between its
// earlier end and the retry did not run anything.
func TestPipelineDurationOfARetriedRun(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	pr := &jobs.PipelineRun{StartedAt: at(0), FinishedAt: at(5 * time.Minute)}
	if got := pipelineDuration(pr, t0.Add(24*time.Hour)); got != short(5*time.Minute) {
		t.Errorf("ended run: %s", got)
	}
	pr.RetriedAt, pr.FinishedAt = at(7*time.Hour), at(7*time.Hour+2*time.Minute)
	if got := pipelineDuration(pr, t0.Add(24*time.Hour)); got != short(2*time.Minute) {
		t.Errorf("retried run, ended again: %s, want %s", got, short(2*time.Minute))
	}
	pr.FinishedAt = nil
	if got := pipelineDuration(pr, t0.Add(7*time.Hour+time.Minute)); got != short(time.Minute) {
		t.Errorf("retried run, running: %s, want %s", got, short(time.Minute))
	}
	if got := pipelineDuration(&jobs.PipelineRun{}, t0); got != "-" {
		t.Errorf("run not started: %s", got)
	}
}

// The pipeline row of the live view says when a run with a timeout times
// out while it runs, and why it stopped once it has.
func TestPipelineReasonTellsTheTimeout(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)
	pr := &jobs.PipelineRun{Status: jobs.StatusRunning, StartedAt: &t0, TimeoutSeconds: 7200}
	if got, want := pipelineReason(pr, t0.Add(30*time.Minute)), "times out in "+short(90*time.Minute)+" (timeoutSeconds 7200)"; got != want {
		t.Errorf("running: %q, want %q", got, want)
	}
	var buf bytes.Buffer
	(&stageView{w: &buf, st: style{tty: true, width: 120}}).draw(pr, t0.Add(30*time.Minute))
	if !strings.Contains(buf.String(), "times out in") {
		t.Errorf("live view lacks the timeout:\n%s", buf.String())
	}
	pr.Status, pr.StopCode, pr.StoppedReason = jobs.StatusFailed, jobs.StopTimeout, "pipeline run timed out after 2h0m0s (timeoutSeconds 7200)"
	if got := pipelineReason(pr, t0.Add(3*time.Hour)); got != pr.StoppedReason {
		t.Errorf("timed out: %q", got)
	}
	if got := pipelineReason(&jobs.PipelineRun{Status: jobs.StatusRunning, StartedAt: &t0}, t0); got != "" {
		t.Errorf("no timeout: %q", got)
	}
}
