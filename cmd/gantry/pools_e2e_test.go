package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestPoolOfOneRunsOneAtATime: in a pool of one slot, the second of two
// runs waits, QUEUED, saying so in ps, describe and pool ls, and runs
// after the first ended: their times do not overlap. The first runs until
// the test stops it, so that the second certainly waits meanwhile however
// slow the machine. Submitting into a pool that does not exist is refused
// naming it; a pool in use is not deleted, an idle one is.
func TestPoolOfOneRunsOneAtATime(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	if out, errOut, code := in.gantry("pool", "set", "p", "--slots", "1"); code != 0 || !strings.Contains(errOut, "pool p created") ||
		!strings.Contains(out, "SLOTS") {
		t.Fatalf("pool set: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code := in.gantry("run", "-d", "--pool", "nope", "--image", in.image, "--", "true")
	if code != exitGantryError || !strings.Contains(errOut, `pool: no pool "nope"`) {
		t.Errorf("run into an unknown pool: exit %d, stderr %q", code, errOut)
	}

	a := in.detached("run", "-d", "--pool", "p", "--image", in.image, "--", "sleep", "300")
	in.waitStatus(a, jobs.StatusRunning)
	b := in.detached("run", "-d", "--pool", "p", "--image", in.image, "--", "sleep", "2")
	const waiting = "waiting for a slot in pool p (1 of 1 in use)"
	if r := in.describe(b); r.Status != jobs.StatusQueued || r.StatusReason != waiting {
		t.Errorf("the second run: %s %q, want QUEUED %q", r.Status, r.StatusReason, waiting)
	}
	if ps, _, _ := in.gantry("ps"); !strings.Contains(ps, waiting) {
		t.Errorf("gantry ps does not say %q:\n%s", waiting, ps)
	}
	if d, _, _ := in.gantry("describe", b); !strings.Contains(d, "Pool:") || !strings.Contains(d, "p (waiting for a slot)") {
		t.Errorf("describe of the waiting run:\n%s", d)
	}
	out, _, _ := in.gantry("pool", "ls", "-o", "json")
	var pools []jobs.Pool
	if err := json.Unmarshal([]byte(out), &pools); err != nil || len(pools) != 1 || pools[0].InUse != 1 || pools[0].Waiting != 1 {
		t.Errorf("pool ls -o json: %v\n%s", err, out)
	}
	if ls, _, _ := in.gantry("pool", "ls"); !strings.Contains(ls, "IN USE") || !strings.Contains(ls, "WAITING") {
		t.Errorf("pool ls:\n%s", ls)
	}
	_, errOut, code = in.gantry("pool", "delete", "p")
	if code != exitGantryError || !strings.Contains(errOut, "pool p has 1 run holding a slot ("+a+") and 1 run waiting for one ("+b+")") {
		t.Errorf("pool delete while in use: exit %d, stderr %q", code, errOut)
	}

	if _, errOut, code := in.gantry("stop", a); code != 0 {
		t.Fatalf("stop the first run: %s", errOut)
	}
	ra := in.waitStatus(a, jobs.StatusCanceled, jobs.StatusFailed, jobs.StatusSucceeded)
	rb := in.waitStatus(b, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled)
	if ra.Status != jobs.StatusCanceled || rb.Status != jobs.StatusSucceeded {
		t.Fatalf("runs: %s %q, %s %q", ra.Status, ra.StoppedReason, rb.Status, rb.StoppedReason)
	}
	if ra.FinishedAt == nil || rb.StartedAt == nil || rb.StartedAt.Before(*ra.FinishedAt) {
		t.Errorf("the runs overlapped: first ran %v to %v, second started %v", ra.StartedAt, ra.FinishedAt, rb.StartedAt)
	}
	if out, errOut, code := in.gantry("pool", "delete", "p"); code != 0 || !strings.Contains(out, "pool p deleted") {
		t.Errorf("pool delete once idle: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
