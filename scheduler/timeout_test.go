package scheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// A pipeline run past its timeoutSeconds is stopped as a stop would
// (running stage runs stopped, PENDING stages canceled, the failure
// stage not started) and ends FAILED with stopCode Timeout; each stopped
// stage run says the pipeline run timed out. Before its deadline, or
// once stopped, TimeOut changes nothing.
func TestDAGTimeOut(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	c := &clock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	d := NewDAG(f, f, f, WithClock(c.now))
	pr := start(t, f, d, "timeoutSeconds: 60\n"+etl, nil)
	if pr.TimeoutSeconds != 60 {
		t.Fatalf("run's timeoutSeconds %d, want the file's 60", pr.TimeoutSeconds)
	}
	if dl, ok := pr.Deadline(); !ok || !dl.Equal(c.t.Add(time.Minute)) {
		t.Fatalf("deadline %v %v, want a minute after the start", dl, ok)
	}
	c.t = c.t.Add(59 * time.Second)
	if _, timedOut, err := d.TimeOut(ctx, "pr-1", c.t); err != nil || timedOut {
		t.Fatalf("TimeOut before the deadline: %v %v", timedOut, err)
	}
	c.t = c.t.Add(time.Second)
	pr, timedOut, err := d.TimeOut(ctx, "pr-1", c.t)
	if err != nil || !timedOut {
		t.Fatalf("TimeOut at the deadline: %v %v", timedOut, err)
	}
	if pr.Status != jobs.StatusFailed || pr.StopCode != jobs.StopTimeout ||
		pr.StoppedReason != "pipeline run timed out after 1m0s (timeoutSeconds 60)" {
		t.Fatalf("timed out run: %s stopCode %q reason %q", pr.Status, pr.StopCode, pr.StoppedReason)
	}
	want := map[string]jobs.Status{"extract": jobs.StatusCanceled, "transform": jobs.StatusCanceled,
		"load": jobs.StatusCanceled, "alert": jobs.StatusCanceled, "cleanup": jobs.StatusCanceled}
	for name, s := range want {
		if st := pr.StageState(name); st.Status != s {
			t.Errorf("stage %s %s, want %s", name, st.Status, s)
		} else if name != "extract" && st.Reason != "pipeline run timed out" {
			t.Errorf("stage %s reason %q", name, st.Reason)
		}
	}
	for _, id := range f.stageRuns("extract") {
		if r, _ := f.GetRun(ctx, id); r.Status != jobs.StatusCanceled ||
			r.StoppedReason != "pipeline run pr-1 timed out after 1m0s (timeoutSeconds 60)" {
			t.Errorf("run %s: %s %q", id, r.Status, r.StoppedReason)
		}
	}
	if n := len(f.order); n != 3 {
		t.Fatalf("%d runs submitted, want extract's 3 only", n)
	}
	if _, timedOut, err := d.TimeOut(ctx, "pr-1", c.t.Add(time.Hour)); err != nil || timedOut {
		t.Fatalf("TimeOut of an ended run: %v %v", timedOut, err)
	}
}

// A run whose stage runs all ended before the timeout's advance ends as
// they did: the timeout stopped nothing, and says nothing.
func TestDAGTimeOutAfterTheWorkEnded(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	c := &clock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	d := NewDAG(f, f, f, WithClock(c.now))
	start(t, f, d, "name: p\ntimeoutSeconds: 10\nstages: [{name: a, taskDefinition: t}]\n", nil)
	f.mu.Lock()
	f.runs[f.order[0]].Status = jobs.StatusSucceeded // its event not applied yet
	f.mu.Unlock()
	pr, timedOut, err := d.TimeOut(ctx, "pr-1", c.t.Add(10*time.Second))
	if err != nil || !timedOut {
		t.Fatalf("TimeOut: %v %v", timedOut, err)
	}
	if pr.Status != jobs.StatusSucceeded || pr.StopCode != "" || pr.StoppedReason != "" {
		t.Fatalf("run: %s stopCode %q reason %q", pr.Status, pr.StopCode, pr.StoppedReason)
	}
}

// A retry restarts the clock and clears the timeout: the retried run
// times out timeoutSeconds after the retry, saying so.
func TestDAGTimeOutAfterRetry(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	c := &clock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	d := NewDAG(f, f, f, WithClock(c.now))
	start(t, f, d, "name: p\ntimeoutSeconds: 10\nstages: [{name: a, taskDefinition: t}]\n", nil)
	c.t = c.t.Add(10 * time.Second)
	if _, timedOut, err := d.TimeOut(ctx, "pr-1", c.t); err != nil || !timedOut {
		t.Fatalf("TimeOut: %v %v", timedOut, err)
	}
	c.t = c.t.Add(time.Hour)
	f.mu.Lock()
	pr := f.prs["pr-1"]
	Retry(pr, RetryStages(pr), c.t)
	f.mu.Unlock()
	if pr.StopCode != "" || pr.StoppedReason != "" {
		t.Fatalf("retried run keeps stopCode %q reason %q", pr.StopCode, pr.StoppedReason)
	}
	if dl, ok := pr.Deadline(); !ok || !dl.Equal(c.t.Add(10*time.Second)) {
		t.Fatalf("retried run's deadline %v %v, want 10s after the retry", dl, ok)
	}
	if _, err := d.Advance(ctx, "pr-1"); err != nil {
		t.Fatal(err)
	}
	if _, timedOut, _ := d.TimeOut(ctx, "pr-1", c.t.Add(9*time.Second)); timedOut {
		t.Fatal("the retried run timed out counting from its first start")
	}
	pr, timedOut, err := d.TimeOut(ctx, "pr-1", c.t.Add(10*time.Second))
	if err != nil || !timedOut || pr.Status != jobs.StatusFailed ||
		!strings.Contains(pr.StoppedReason, "timed out 10s after retry 1") {
		t.Fatalf("retried run: %v %v %s %q", timedOut, err, pr.Status, pr.StoppedReason)
	}
}

// A PENDING run (a backfill's, waiting for its turn) has no deadline and
// does not time out; stopped by a user it is CANCELED, not timed out.
func TestDAGTimeOutLeavesPendingAndStoppedRuns(t *testing.T) {
	ctx := context.Background()
	const src = "name: p\ntimeoutSeconds: 10\nstages: [{name: a, taskDefinition: t}]\n"
	c := &clock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	t.Run("pending", func(t *testing.T) {
		f := newFake()
		d := NewDAG(f, f, f, WithClock(c.now))
		p, err := jobs.ParsePipeline([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		pending := NewPipelineRun(p, "pr-1", nil, c.t)
		pending.Status = jobs.StatusPending
		f.prs["pr-1"] = pending
		if _, timedOut, _ := d.TimeOut(ctx, "pr-1", c.t.Add(time.Hour)); timedOut {
			t.Fatal("a PENDING run timed out")
		}
		if pr, _ := f.GetPipelineRun(ctx, "pr-1"); pr.Status != jobs.StatusPending || pr.StopRequested {
			t.Fatalf("PENDING run after TimeOut: %s stop %v", pr.Status, pr.StopRequested)
		}
	})
	t.Run("stopped", func(t *testing.T) {
		f := newFake()
		d := NewDAG(f, f, f, WithClock(c.now))
		start(t, f, d, src, nil)
		pr, err := d.Stop(ctx, "pr-1", "enough")
		if err != nil {
			t.Fatal(err)
		}
		if _, timedOut, _ := d.TimeOut(ctx, "pr-1", c.t.Add(time.Hour)); timedOut || pr.Status != jobs.StatusCanceled {
			t.Fatalf("stopped run: timed out %v, %s", timedOut, pr.Status)
		}
	})
}
