package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
)

// TestSweepMarksAttemptOfLostWorker: the only worker of the cluster is
// killed with SIGKILL while it runs a job, and no other worker takes the
// job: the server's sweep records the attempt as WorkerLost once the worker
// has been gone for longer than its lease, and the run goes back to QUEUED
// saying why; a worker that joins later runs it to the end. No run stays
// RUNNING forever.
func TestSweepMarksAttemptOfLostWorker(t *testing.T) {
	t.Parallel()
	cli := sampletest.Docker(t)
	image := sampletest.Image(t)
	label := fmt.Sprintf("e2e-sweep%d", time.Now().UnixNano()%100000)
	sampletest.Cleanup(t, cli, label)
	// --nats-port 0: the server picks a port and writes its URL to
	// DATA/nats.url, as gantry up does.
	data := t.TempDir()
	startProc(t, "server", "--embedded-nats", "--nats-port", "0", "--data", data, "--lease", "2s")
	var url string
	waitFor(t, "DATA/nats.url", func() bool {
		b, err := os.ReadFile(filepath.Join(data, "nats.url"))
		url = strings.TrimSpace(string(b))
		return err == nil && strings.HasPrefix(url, "nats://127.0.0.1:")
	})
	in := &instance{t: t, env: append(os.Environ(), "GANTRY_NATS_URL="+url), image: image}
	waitFor(t, "the server", func() bool { _, _, code := in.gantry("ps"); return code == 0 })
	workerArgs := func(id string) []string {
		return []string{"worker", "--nats", url, "--id", id, "--lease", "2s", "--grace", "5s",
			"--container-label", sampletest.LabelKey + "=" + label}
	}
	first := label + "-a"
	victim := startProc(t, workerArgs(first)...)
	waitFor(t, "the worker", func() bool { return len(in.workers()) == 1 })

	id := in.runDetached("sh", "-c", "echo ready; sleep 5; echo done")
	in.waitLog(id, "ready")
	victim.kill()
	killed := time.Now()

	r := in.waitStatus(id, jobs.StatusQueued)
	lost := r.Attempts[0]
	if len(r.Attempts) != 2 || lost.StopCode != jobs.StopWorkerLost || lost.Worker != first || lost.Status != jobs.StatusFailed ||
		lost.FinishedAt == nil || !strings.Contains(lost.StoppedReason, "no heartbeat") {
		t.Fatalf("after the sweep: %d attempts: %+v", len(r.Attempts), r.Attempts)
	}
	if !strings.Contains(r.StatusReason, "lost with worker "+first) && !strings.Contains(r.StatusReason, "no live worker") {
		t.Errorf("queued run does not say why it waits: %q", r.StatusReason)
	}
	t.Logf("attempt 1 recorded as WorkerLost %s after the kill", time.Since(killed).Round(time.Second))
	if ps, _, _ := in.gantry("ps"); !strings.Contains(ps, "QUEUED") {
		t.Errorf("ps does not show the run queued again:\n%s", ps)
	}

	startProc(t, workerArgs(label+"-b")...)
	r = in.waitStatus(id, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled)
	if r.Status != jobs.StatusSucceeded || len(r.Attempts) != 2 || r.Attempts[1].Worker != label+"-b" {
		t.Fatalf("run: %s with attempts %+v", r.Status, r.Attempts)
	}
	if logs, _, _ := in.gantry("logs", id, "--attempt", "2"); logs != "ready\ndone\n" {
		t.Errorf("logs of attempt 2: %q", logs)
	}
}

// TestServerEmbeddedNATSRoles: `gantry server --embedded-nats` takes the
// operator and submit-only users as `gantry up` does.
func TestServerEmbeddedNATSRoles(t *testing.T) {
	t.Parallel()
	_, url := startEmbeddedServer(t, t.TempDir(),
		"--user", "op", "--password", "op-secret", "--submit-user", "app", "--submit-password", "app-secret")
	op := append(os.Environ(), "GANTRY_NATS_URL="+url, "GANTRY_NATS_USER=op", "GANTRY_NATS_PASSWORD=op-secret")
	app := append(os.Environ(), "GANTRY_NATS_URL="+url, "GANTRY_NATS_USER=app", "GANTRY_NATS_PASSWORD=app-secret")
	waitFor(t, "the server", func() bool { _, _, code := runBin(t, op, "ps"); return code == 0 })
	out, errOut, code := runBin(t, app, "run", "-d", "--image", "gantry/none:1", "--", "true")
	if code != 0 {
		t.Fatalf("submit as the submitter: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	if out, errOut, code := runBin(t, op, "describe", id); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("describe as the operator: exit %d %s", code, errOut)
	}
	if _, errOut, code := runBin(t, app, "stop", id); code != exitGantryError || !strings.Contains(strings.ToLower(errOut), "permission") {
		t.Fatalf("stop as the submitter: exit %d: %s", code, errOut)
	}
	wantRefused(t, os.Environ(), "--submit-user needs an operator",
		"server", "--embedded-nats", "--nats-port", "0", "--data", t.TempDir(), "--submit-user", "a", "--submit-password", "b")
}
