package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestArrayRun: gantry run --array-size 3 makes a parent and three
// children PARENT-0..2, each seeing its index; one child fails, so the
// parent ends FAILED with the summary and the failed child's exit code,
// announced once; gantry wait of the parent exits with that code; runs
// that depend on the parent wait for the whole array; ps lists the parent,
// ps --array the children.
func TestArrayRun(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	out, errOut, code := in.gantry("run", "-d", "--array-size", "3", "--tag", "team=data", "--image", in.image, "--", "sh", "-c",
		`sleep 1; echo "index $AWS_BATCH_JOB_ARRAY_INDEX $GANTRY_ARRAY_INDEX of $GANTRY_ARRAY_SIZE"; if [ "$GANTRY_ARRAY_INDEX" = 1 ]; then exit 3; fi`)
	if code != 0 {
		t.Fatalf("run --array-size 3: exit %d: %s", code, errOut)
	}
	parent := strings.TrimSpace(out)
	onFailure := in.detached("run", "-d", "--depends-on", parent+":failure", "--image", in.image, "--", "echo", "after")
	onSuccess := in.detached("run", "-d", "--depends-on", parent, "--image", in.image, "--", "echo", "never")

	waitOut, _, waitCode := in.gantry("wait", parent)
	if waitCode != 3 || waitOut != parent+"\tFAILED\t3\n" {
		t.Errorf("wait of the parent: exit %d, %q; want 3 and %q", waitCode, waitOut, parent+"\tFAILED\t3\n")
	}
	p := in.describe(parent)
	want := map[jobs.Status]int{jobs.StatusSucceeded: 2, jobs.StatusFailed: 1}
	if p.Status != jobs.StatusFailed || p.ArrayProperties == nil || p.ArrayProperties.Size != 3 ||
		fmt.Sprint(p.ArrayProperties.StatusSummary) != fmt.Sprint(want) || p.ExitCode == nil || *p.ExitCode != 3 ||
		len(p.Attempts) != 0 || p.StartedAt == nil || p.FinishedAt == nil ||
		!strings.Contains(p.StoppedReason, "1 of 3 child runs did not succeed, "+parent+"-1 FAILED (exit 3)") {
		b, _ := json.MarshalIndent(p, "", "  ")
		t.Errorf("the parent:\n%s", b)
	}
	for i := range 3 {
		id := jobs.ArrayChildID(parent, i)
		c := in.describe(id)
		if c.ArrayJobID != parent || c.ArrayProperties == nil || c.ArrayProperties.Index == nil || *c.ArrayProperties.Index != i ||
			c.Tags["team"] != "data" {
			t.Errorf("child %d: arrayJobId %q, arrayProperties %+v, tags %v", i, c.ArrayJobID, c.ArrayProperties, c.Tags)
		}
		if logs, _, _ := in.gantry("logs", id); logs != fmt.Sprintf("index %d %d of 3\n", i, i) {
			t.Errorf("child %d's log: %q", i, logs)
		}
	}
	if r := in.waitStatus(onFailure, jobs.StatusSucceeded, jobs.StatusFailed); r.Status != jobs.StatusSucceeded {
		t.Errorf("the run depending on the array's failure: %s %s", r.Status, r.StoppedReason)
	}
	if r := in.waitStatus(onSuccess, jobs.StatusSucceeded, jobs.StatusFailed); r.Status != jobs.StatusFailed || r.StartedAt != nil {
		t.Errorf("the run depending on the array's success: %s, started %v; want FAILED without running", r.Status, r.StartedAt)
	}

	ps, _, _ := in.gantry("ps", "--all", "-o", "json")
	var listed []jobs.Run
	json.Unmarshal([]byte(ps), &listed)
	var ids []string
	for _, r := range listed {
		ids = append(ids, r.RunID)
	}
	if !strings.Contains(strings.Join(ids, " "), parent) || strings.Contains(strings.Join(ids, " "), parent+"-") {
		t.Errorf("ps --all lists %v; want the parent and none of its children", ids)
	}
	children, _, _ := in.gantry("ps", "--array", parent, "-o", "json")
	if err := json.Unmarshal([]byte(children), &listed); err != nil || len(listed) != 3 {
		t.Errorf("ps --array: %v, %d runs:\n%s", err, len(listed), children)
	}
	d, _, _ := in.gantry("describe", parent)
	for _, line := range []string{"Array:", "3 children: 2 SUCCEEDED, 1 FAILED", "Children:", parent + "-1", "CHILD"} {
		if !strings.Contains(d, line) {
			t.Errorf("describe of the parent has no %q:\n%s", line, d)
		}
	}
	if d, _, _ := in.gantry("describe", parent+"-2"); !strings.Contains(d, "Array run:") || !strings.Contains(d, parent+" (index 2)") {
		t.Errorf("describe of a child:\n%s", d)
	}
	if out, errOut, code := in.gantry("logs", parent); code != 0 || out != "" || !strings.Contains(errOut, "is an array run: it runs no container") {
		t.Errorf("logs of the parent: exit %d, %q, %q", code, out, errOut)
	}
	evs, _, _ := in.gantry("events", "--since", "1h", "--until", "0s", "--run", parent, "-o", "json")
	if n := strings.Count(evs, `"status":"FAILED"`); n != 1 {
		t.Errorf("the parent's end announced %d times; want once:\n%s", n, evs)
	}
}

// TestArrayRunStop: attached, gantry run --array-size waits for the
// parent and exits 0 when every child succeeded; gantry stop of an array
// run stops every child not ended, and the parent ends CANCELED once they
// have.
func TestArrayRunStop(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	out, errOut, code := in.gantry("run", "--array-size", "2", "--image", in.image, "--", "true")
	parts := strings.Split(strings.TrimSpace(out), "\t")
	if code != 0 || len(parts) != 3 || parts[1] != "SUCCEEDED" || parts[2] != "2 children: 2 SUCCEEDED" ||
		!strings.Contains(errOut, "gantry: array run "+parts[0]+": 2 child runs") {
		t.Fatalf("attached array run: exit %d, %q, %q", code, out, errOut)
	}
	// Its rerun is the whole array again, child by child.
	again := in.detached("rerun", "-d", parts[0])
	if r := in.waitStatus(again, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled); r.Status != jobs.StatusSucceeded ||
		r.RerunOf != parts[0] || r.ArrayProperties == nil || r.ArrayProperties.Size != 2 {
		t.Errorf("the rerun of the array: %s, rerunOf %q, %+v", r.Status, r.RerunOf, r.ArrayProperties)
	}
	if c := in.describe(jobs.ArrayChildID(again, 1)); c.RerunOf != jobs.ArrayChildID(parts[0], 1) {
		t.Errorf("the rerun's child 1 reruns %q", c.RerunOf)
	}
	parent := in.detached("run", "-d", "--array-size", "2", "--image", in.image, "--", "sh", "-c", "echo up; sleep 600")
	in.waitLog(jobs.ArrayChildID(parent, 0), "up")
	if r := in.describe(parent); r.Status != jobs.StatusRunning {
		t.Errorf("the parent while a child runs: %s", r.Status)
	}
	if _, errOut, code := in.gantry("stop", parent); code != 0 {
		t.Fatalf("stop the parent: exit %d: %s", code, errOut)
	}
	p := in.waitStatus(parent, jobs.StatusCanceled, jobs.StatusFailed, jobs.StatusSucceeded)
	if p.Status != jobs.StatusCanceled || p.StopCode != jobs.StopUserInitiated || p.ArrayProperties.StatusSummary[jobs.StatusCanceled] != 2 {
		b, _ := json.MarshalIndent(p, "", "  ")
		t.Errorf("the stopped parent:\n%s", b)
	}
	for i := range 2 {
		if c := in.describe(jobs.ArrayChildID(parent, i)); c.Status != jobs.StatusCanceled {
			t.Errorf("child %d: %s", i, c.Status)
		}
	}
}

// TestArrayRunRefused: a size gantry cannot make is refused before
// anything is sent, naming the flag and what it takes.
func TestArrayRunRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--array-size", "1"}, `--array-size 1: must be between 2 and 10000 (an array of one is a plain run: leave --array-size out)`},
		{[]string{"--array-size", "0"}, `--array-size 0: must be between 2 and 10000`},
		{[]string{"--array-size", "10001"}, `--array-size 10001: must be between 2 and 10000`},
		{[]string{"--array-size", "many"}, `--array-size "many": want a whole number from 2 to 10000`},
		{[]string{"--array-size", "3", "--array-order", "random"}, `--array-order "random": want parallel or sequential`},
		{[]string{"--array-order", "sequential"}, `--array-order sequential: orders the children of an array run: give --array-size N too`},
	} {
		args := append(append([]string{"run", "-d"}, c.flags...), "--image", "x", "--", "true")
		_, errOut, code := runBin(t, nil, args...)
		if code != exitGantryError || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want 125 and %q", c.flags, code, errOut, c.want)
		}
	}
}

// TestArrayRunSequential: --array-order sequential runs child I+1 once
// child I succeeded; a child that fails fails those after it without
// running them, and the parent.
func TestArrayRunSequential(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	parent := in.detached("run", "-d", "--array-size", "3", "--array-order", "sequential", "--image", in.image, "--", "sh", "-c",
		`echo "child $GANTRY_ARRAY_INDEX"; if [ "$GANTRY_ARRAY_INDEX" = 1 ]; then exit 3; fi`)
	p := in.waitStatus(parent, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled)
	if p.Status != jobs.StatusFailed || p.ArrayProperties.Order != jobs.ArrayOrderSequential {
		t.Errorf("the parent: %s, order %q", p.Status, p.ArrayProperties.Order)
	}
	c0, c1, c2 := in.describe(jobs.ArrayChildID(parent, 0)), in.describe(jobs.ArrayChildID(parent, 1)), in.describe(jobs.ArrayChildID(parent, 2))
	if c0.Status != jobs.StatusSucceeded || c1.Status != jobs.StatusFailed || c1.StartedAt == nil || c0.FinishedAt == nil ||
		c1.StartedAt.Before(*c0.FinishedAt) {
		t.Errorf("child 0 %s (ended %v), child 1 %s (started %v); want child 1 to start after child 0 succeeded",
			c0.Status, c0.FinishedAt, c1.Status, c1.StartedAt)
	}
	if c2.Status != jobs.StatusFailed || c2.StartedAt != nil || c2.StopCode != jobs.StopFailedToStart ||
		!strings.Contains(c2.StoppedReason, jobs.ArrayChildID(parent, 1)+" FAILED; this run needed it to succeed") {
		t.Errorf("child 2: %s, started %v, %s %q; want FAILED without running", c2.Status, c2.StartedAt, c2.StopCode, c2.StoppedReason)
	}
	if d, _, _ := in.gantry("describe", parent); !strings.Contains(d, "Array order:") {
		t.Errorf("describe of the parent does not show its order:\n%s", d)
	}
}

// TestArrayRunSequentialStop: gantry stop of a sequential array run
// while child 0 runs ends every child CANCELED with the stop's reason,
// those still waiting for the one before them too: none FAILED.
func TestArrayRunSequentialStop(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	parent := in.detached("run", "-d", "--array-size", "3", "--array-order", "sequential", "--image", in.image, "--",
		"sh", "-c", "echo up; sleep 600")
	in.waitLog(jobs.ArrayChildID(parent, 0), "up")
	if _, errOut, code := in.gantry("stop", "--reason", "wrong input", parent); code != 0 {
		t.Fatalf("stop the parent: exit %d: %s", code, errOut)
	}
	p := in.waitStatus(parent, jobs.StatusCanceled, jobs.StatusFailed, jobs.StatusSucceeded)
	if p.Status != jobs.StatusCanceled || p.ArrayProperties.StatusSummary[jobs.StatusCanceled] != 3 {
		t.Errorf("the stopped parent: %s, %v; want CANCELED, 3 CANCELED", p.Status, p.ArrayProperties.StatusSummary)
	}
	for i := range 3 {
		if c := in.describe(jobs.ArrayChildID(parent, i)); c.Status != jobs.StatusCanceled || c.StoppedReason != "wrong input" {
			t.Errorf("child %d: %s, %s %q; want CANCELED, \"wrong input\"", i, c.Status, c.StopCode, c.StoppedReason)
		}
	}
}

// TestArrayRunDescribeFirstChildren: describe of an array run of more
// children than it shows lists the first few by index, as the README
// says, not those whose ids sort last (PARENT-9995 to PARENT-9999 for an
// array of 10,000), and counts the rest.
func TestArrayRunDescribeFirstChildren(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	// A cluster no worker serves: the children stay QUEUED, none runs.
	parent := in.detached("run", "-d", "--array-size", "12", "--cluster", "nowhere", "--image", in.image, "--", "true")
	d, _, code := in.gantry("describe", parent)
	var listed []string
	for _, line := range strings.Split(d, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], parent+"-") {
			listed = append(listed, f[0])
		}
	}
	var want []string
	for i := range 5 {
		want = append(want, jobs.ArrayChildID(parent, i))
	}
	if code != 0 || fmt.Sprint(listed) != fmt.Sprint(want) || !strings.Contains(d, "(and 7 more: gantry ps --array "+parent+")") {
		t.Errorf("describe of an array of 12: exit %d, children %v; want %v and 7 more:\n%s", code, listed, want, d)
	}
	if _, errOut, code := in.gantry("stop", parent); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, errOut)
	}
}
