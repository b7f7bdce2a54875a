//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// eventsProc is a `gantry events` following in the background.
type eventsProc struct {
	cmd         *exec.Cmd
	out, errOut *syncBuffer
	exited      chan struct{}
}

func (in *instance) startEvents(env []string, args ...string) *eventsProc {
	in.t.Helper()
	p := &eventsProc{cmd: exec.Command(gantryBin, append([]string{"events"}, args...)...),
		out: &syncBuffer{}, errOut: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errOut
	if err := p.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	in.t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// waitOut waits until the output has a line with every one of words.
func (p *eventsProc) waitOut(t *testing.T, words ...string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for _, l := range strings.Split(p.out.String(), "\n") {
			if containsAll(l, words...) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gantry %v: no line with %q in 2m:\n%s\nstderr:\n%s", p.cmd.Args[1:], words, p.out, p.errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends sig and returns the exit code.
func (p *eventsProc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	return p.wait(t)
}

func (p *eventsProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatalf("gantry %v did not end within a minute:\n%s\nstderr:\n%s", p.cmd.Args[1:], p.out, p.errOut)
	}
	return p.cmd.ProcessState.ExitCode()
}

func containsAll(s string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// TestEventsFollowsRunsLive: gantry events prints the status changes of
// runs as they happen: lines with the task, exit code and worker, JSON
// Lines with -o json; --since replays what the stream holds, --until ends
// the replay, filters pick runs and statuses; a submit-only user follows
// too; SIGTERM and Ctrl-C end it with 0, losing NATS with 125.
func TestEventsFollowsRunsLive(t *testing.T) {
	t.Parallel()
	in := startUpEnv(t, []string{"GANTRY_NATS_USER=op", "GANTRY_NATS_PASSWORD=op-secret"},
		"--user", "op", "--password", "op-secret", "--submit-user", "app", "--submit-password", "app-secret")
	app := append(append([]string{}, in.env...), "GANTRY_NATS_USER=app", "GANTRY_NATS_PASSWORD=app-secret")
	t0 := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)

	ok := in.runDetached("sh", "-c", "echo fine")
	in.waitStatus(ok, jobs.StatusSucceeded)

	// Only new events without --since: ok's are not shown, a run
	// submitted from now on is (submitted again until one shows, as the
	// follower's start is not known from outside).
	live := in.startEvents(in.env, "--kind", "runs")
	asJSON := in.startEvents(in.env, "--since", t0, "-o", "json")
	asApp := in.startEvents(app, "--since", t0)
	var next string
	for deadline := time.Now().Add(2 * time.Minute); ; {
		next = in.runDetached("sh", "-c", "exit 3")
		in.waitStatus(next, jobs.StatusFailed)
		if strings.Contains(live.out.String(), next) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gantry events shows no new run in 2m:\n%s\nstderr:\n%s", live.out, live.errOut)
		}
	}
	line := live.waitOut(t, next, "FAILED")
	if !containsAll(line, " run ", "exit=3", "worker=", "cluster=default", "task=") || strings.Contains(live.out.String(), ok) {
		t.Errorf("gantry events: the failed run's line %q lacks its details, or a run that ended before it started shows:\n%s", line, live.out)
	}
	if strings.Contains(line, "\x1b[") {
		t.Errorf("gantry events piped coloured its line: %q", line)
	}

	// -o json: the events as published, one object per line, from --since.
	asJSON.waitOut(t, next, `"FAILED"`)
	var seen []jobs.Event
	sc := bufio.NewScanner(strings.NewReader(asJSON.out.String()))
	for sc.Scan() {
		var ev jobs.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("gantry events -o json: a line that is not JSON: %q: %v", sc.Text(), err)
		}
		seen = append(seen, ev)
	}
	var okStatuses []jobs.Status
	for _, ev := range seen {
		if ev.Source != jobs.SourceServer {
			t.Errorf("gantry events -o json: an event not the server's: %+v", ev)
		}
		if ev.RunID == ok {
			okStatuses = append(okStatuses, ev.Status)
			if ev.TaskDefinition == "" || ev.Cluster != "default" {
				t.Errorf("gantry events -o json: an event without its task definition or cluster: %+v", ev)
			}
		}
	}
	if len(okStatuses) < 2 || okStatuses[0] != jobs.StatusQueued || okStatuses[len(okStatuses)-1] != jobs.StatusSucceeded {
		t.Errorf("gantry events --since: the first run's statuses replayed are %v, want QUEUED ... SUCCEEDED:\n%s", okStatuses, asJSON.out)
	}

	// The submit-only user follows too.
	asApp.waitOut(t, ok, "SUCCEEDED", "exit=0")
	asApp.waitOut(t, next, "FAILED", "exit=3")

	// --until a time past: the replay ends by itself; filters.
	until := time.Now().UTC().Format(time.RFC3339Nano)
	out, errOut, code := in.gantry("events", "--since", t0, "--until", until, "--status", "failed", "--kind", "runs")
	if code != 0 {
		t.Fatalf("gantry events --until: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if !strings.Contains(l, " FAILED ") || strings.Contains(l, ok) {
			t.Errorf("gantry events --status failed: a line %q", l)
		}
	}
	if !strings.Contains(out, next) {
		t.Errorf("gantry events --status failed --since: no line of the failed run %s:\n%s", next, out)
	}
	out, _, code = in.gantry("events", "--since", t0, "--until", until, "--run", ok, "-o", "json")
	if n := strings.Count(out, "\n"); code != 0 || n != len(okStatuses) || strings.Contains(out, next) {
		t.Errorf("gantry events --run %s: exit %d, %d lines, want %d of that run only:\n%s", ok, code, n, len(okStatuses), out)
	}

	// Interrupted: exit 0, nothing on stderr.
	if code := asJSON.stop(t, syscall.SIGINT); code != 0 || asJSON.errOut.String() != "" {
		t.Errorf("gantry events on SIGINT: exit %d, want 0; stderr %q", code, asJSON.errOut)
	}
	if code := asApp.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("gantry events on SIGTERM: exit %d, want 0; stderr %q", code, asApp.errOut)
	}

	// NATS gone: exit 125, saying so.
	in.stop()
	if code := live.wait(t); code != exitGantryError || !strings.Contains(live.errOut.String(), "lost NATS at") {
		t.Errorf("gantry events when NATS went away: exit %d, want %d, saying it lost NATS: %q", code, exitGantryError, live.errOut)
	}
}
