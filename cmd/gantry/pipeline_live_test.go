package main

import (
	"bytes"
	"slices"
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

// TestStageChangesLineUp: off a terminal an attached pipeline run prints
// a line per stage change, at different times; its columns were ragged
// ("RUNNING  0/3 runs" against "SUCCEEDED  3/3 runs", a duration after
// each). Each column now starts at the same place on every line.
func TestStageChangesLineUp(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	now := t0
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	runs := func(s jobs.Status, n int) []jobs.StageRun {
		out := make([]jobs.StageRun, n)
		for i := range out {
			out[i] = jobs.StageRun{RunID: "r", Status: s, Attempts: 1}
		}
		return out
	}
	var buf bytes.Buffer
	show := stageChanges(&buf, func() time.Time { return now })
	pr := &jobs.PipelineRun{Stages: []jobs.StageState{
		{Name: "extract", Status: jobs.StatusRunning, StartedAt: at(0), Runs: runs(jobs.StatusRunning, 3)},
		{Name: "transform-everything-at-once", Status: jobs.StatusPending},
		{Name: "load", Status: jobs.StatusPending},
	}}
	show(pr)
	now = t0.Add(75 * time.Second)
	pr.Stages[0] = jobs.StageState{Name: "extract", Status: jobs.StatusSucceeded, StartedAt: at(0), FinishedAt: at(70 * time.Second),
		Runs: runs(jobs.StatusSucceeded, 3)}
	pr.Stages[1] = jobs.StageState{Name: "transform-everything-at-once", Status: jobs.StatusRunning, StartedAt: at(71 * time.Second),
		Runs: runs(jobs.StatusRunning, 1)}
	show(pr)
	now = t0.Add(2 * time.Hour)
	pr.Stages[1].Status, pr.Stages[1].FinishedAt = jobs.StatusFailed, at(time.Hour)
	pr.Stages[1].Runs[0].Status, pr.Stages[1].Runs[0].Attempts = jobs.StatusFailed, 2
	pr.Stages[1].Reason = "1 of 1 runs failed"
	pr.Stages[2].Status, pr.Stages[2].Reason = jobs.StatusSkipped, "dependency ended FAILED"
	show(pr)

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines, want 7 (3 stages, then 2 changes, then 2):\n%s", len(lines), buf.String())
	}
	// Where each column starts: after the stage name, the status, the
	// runs and the duration, as the first line full enough shows them.
	col := func(l, after string) int {
		i := strings.Index(l, after)
		if i < 0 {
			return -1
		}
		i += len(after)
		for i < len(l) && l[i] == ' ' {
			i++
		}
		return i
	}
	var statusAt, runsAt, durAt, reasonAt []int
	for _, l := range lines {
		for _, name := range []string{"extract", "transform-everything-at-once", "load"} {
			if c := col(l, " "+name); c >= 0 && strings.Contains(l, "  "+name+" ") {
				statusAt = append(statusAt, c)
			}
		}
		for _, s := range []string{"RUNNING", "SUCCEEDED", "FAILED"} {
			if strings.Contains(l, "runs, ") {
				if c := col(l, s); c >= 0 && strings.Contains(l, " "+s+" ") {
					runsAt = append(runsAt, c)
				}
			}
		}
		if strings.Contains(l, " attempts") {
			durAt = append(durAt, col(l, " attempts"))
			if i := strings.Index(l, "runs failed"); i >= 0 {
				reasonAt = append(reasonAt, i-len("1 of 1 "))
			}
		}
		if i := strings.Index(l, "dependency ended"); i >= 0 {
			reasonAt = append(reasonAt, i)
		}
	}
	for name, at := range map[string][]int{"status": statusAt, "runs": runsAt, "duration": durAt, "reason": reasonAt} {
		if len(at) < 2 || slices.Min(at) != slices.Max(at) {
			t.Errorf("the %s column starts at %v:\n%s", name, at, buf.String())
		}
	}
	if strings.Contains(buf.String(), " \n") {
		t.Errorf("trailing spaces:\n%q", buf.String())
	}
}
