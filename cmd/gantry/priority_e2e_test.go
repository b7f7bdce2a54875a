package main

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestPriorityOrdersQueuedRuns: a worker with one slot, busy, has a low,
// a normal and a high run queued in that order; once the slot frees it
// starts them high, normal, low. describe shows the priority; a bad one
// is refused naming the flag.
func TestPriorityOrdersQueuedRuns(t *testing.T) {
	t.Parallel()
	in := startUp(t, "--slots", "1")
	if _, errOut, code := in.gantry("run", "-d", "--priority", "urgent", "--image", in.image, "--", "true"); code != exitGantryError ||
		!strings.Contains(errOut, `--priority "urgent": want high, normal or low`) {
		t.Errorf("--priority urgent: exit %d: %s", code, errOut)
	}
	blocker := in.runDetached("sh", "-c", "echo ready; sleep 300")
	in.waitLog(blocker, "ready")
	low := in.runDetachedFlags([]string{"--priority", "low"}, "true")
	normal := in.runDetached("true")
	high := in.runDetachedFlags([]string{"--priority", "high"}, "true")
	for id, want := range map[string]jobs.Priority{low: jobs.PriorityLow, normal: jobs.PriorityNormal, high: jobs.PriorityHigh} {
		if r := in.describe(id); r.Priority != want || r.Status != jobs.StatusQueued {
			t.Errorf("run %s: priority %q, status %s; want %s, QUEUED", id, r.Priority, r.Status, want)
		}
	}
	if out, _, _ := in.gantry("describe", high); !strings.Contains(out, "Priority:") || !strings.Contains(out, "high") {
		t.Errorf("describe does not show the priority:\n%s", out)
	}
	in.gantry("stop", blocker)
	var started []*jobs.Run
	for _, id := range []string{high, normal, low} {
		r := in.waitStatus(id, jobs.StatusSucceeded)
		if r.StartedAt == nil {
			t.Fatalf("run %s ended with no start", id)
		}
		started = append(started, r)
	}
	for i := 1; i < len(started); i++ {
		if !started[i-1].StartedAt.Before(*started[i].StartedAt) {
			t.Errorf("started %s at %s, then %s at %s: want high, normal, low in that order",
				started[i-1].Priority, started[i-1].StartedAt, started[i].Priority, started[i].StartedAt)
		}
	}
}
