package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// TestRunDependsOn: gantry run --depends-on waits, QUEUED, for the run it
// names (saying so in ps, describe and, attached, on stderr), then runs
// and streams as usual; a dependency that failed fails the run without
// running it, exit 125 with the reason; unknown runs and bad conditions
// are refused naming them.
func TestRunDependsOn(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	// A gate no worker takes (no worker in its cluster) holds a back until
	// the test stops it: b certainly waits meanwhile.
	gate := in.detached("run", "-d", "--cluster", "nowhere", "--image", in.image, "--", "true")
	a := in.detached("run", "-d", "--depends-on", gate+":complete", "--image", in.image, "--", "sh", "-c", "echo extracted")

	type result struct {
		stdout, stderr string
		code           int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := runBin(t, in.env, "run", "--depends-on", a, "--image", in.image, "--", "sh", "-c", "echo loaded")
		done <- result{out, errOut, code}
	}()
	var b jobs.Run
	for deadline := time.Now().Add(time.Minute); b.RunID == ""; time.Sleep(100 * time.Millisecond) {
		out, _, _ := in.gantry("ps", "-o", "json")
		var runs []jobs.Run
		json.Unmarshal([]byte(out), &runs)
		for _, r := range runs {
			if len(r.DependsOn) == 1 && r.DependsOn[0].RunID == a {
				b = r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the attached run's run did not show in gantry ps within a minute:\n%s", out)
		}
	}
	waiting := fmt.Sprintf("waiting for run %s (QUEUED) to succeed", a)
	if b.Status != jobs.StatusQueued || b.StatusReason != waiting {
		t.Errorf("b in ps -o json: %s %q, want QUEUED %q", b.Status, b.StatusReason, waiting)
	}
	if ps, _, _ := in.gantry("ps"); !strings.Contains(ps, waiting) {
		t.Errorf("gantry ps does not say %q:\n%s", waiting, ps)
	}
	if d, _, _ := in.gantry("describe", b.RunID); !strings.Contains(d, "Status reason:") || !strings.Contains(d, waiting) ||
		!strings.Contains(d, "Depends on:") || !strings.Contains(d, a+":success (waiting)") {
		t.Errorf("describe of the waiting run:\n%s", d)
	}
	if _, errOut, code := in.gantry("stop", gate); code != 0 {
		t.Fatalf("stop the gate: %s", errOut)
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the attached run did not end within 2 minutes:\n%s", in.log)
	}
	if res.code != 0 || res.stdout != "loaded\n" ||
		!strings.Contains(res.stderr, fmt.Sprintf("gantry: run %s is queued: %s\n", b.RunID, waiting)) {
		t.Errorf("attached run: exit %d, stdout %q, stderr %q; want 0, %q, and what it waited for", res.code, res.stdout, res.stderr, "loaded\n")
	}
	if r := in.describe(a); r.Status != jobs.StatusSucceeded {
		t.Errorf("a: %s", r.Status)
	}
	if r := in.describe(b.RunID); r.Status != jobs.StatusSucceeded || r.StartedAt == nil || r.DependsOn[0].Status != jobs.StatusSucceeded {
		t.Errorf("b: %s, dependsOn %+v", r.Status, r.DependsOn)
	}

	// A failed dependency fails the run without running it.
	failed := in.runDetached("sh", "-c", "exit 4")
	in.waitStatus(failed, jobs.StatusFailed)
	out, errOut, code := in.gantry("run", "--depends-on", failed, "--image", in.image, "--", "echo", "never")
	reason := fmt.Sprintf("run %s FAILED; this run needed it to succeed", failed)
	if code != exitGantryError || out != "" || !strings.Contains(errOut, "FAILED: "+reason) {
		t.Errorf("depending on a failed run: exit %d, stdout %q, stderr %q; want %d and %q", code, out, errOut, exitGantryError, reason)
	}
	notify := in.detached("run", "-d", "--depends-on", failed+":failure", "--image", in.image, "--", "true")
	if r := in.waitStatus(notify, jobs.StatusSucceeded, jobs.StatusFailed); r.Status != jobs.StatusSucceeded {
		t.Errorf("--depends-on RUN:failure of a failed run: %s %q", r.Status, r.StoppedReason)
	}

	// Refusals: exit 125, one line naming the problem.
	const unknown = "01jzzzzzzzzzzzzzzzzzzzzzzz"
	for _, tt := range []struct{ dep, want string }{
		{unknown, `--depends-on "` + unknown + `": no such run (gantry ps --all lists runs)`},
		{a + ":done", `--depends-on "` + a + `:done": condition "done": want success, failure or complete`},
	} {
		_, errOut, code := in.gantry("run", "--depends-on", tt.dep, "--image", in.image, "--", "true")
		if code != exitGantryError || !strings.Contains(errOut, tt.want) {
			t.Errorf("--depends-on %s: exit %d, stderr %q; want %d and %q", tt.dep, code, errOut, exitGantryError, tt.want)
		}
	}
}

// detached runs a gantry command that prints a run id, and returns it.
func (in *instance) detached(args ...string) string {
	in.t.Helper()
	out, errOut, code := in.gantry(args...)
	if code != 0 {
		in.t.Fatalf("gantry %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return strings.TrimSpace(out)
}
