package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func TestCtrlCStopsAttachedRun(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	cmd := exec.Command(gantryBin, "run", "--image", in.image, "--", "sh", "-c", "echo ready; sleep 300")
	cmd.Env = in.env
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() }) // if the test fails before it ends
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { io.Copy(io.Discard, stdout); done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("gantry run did not end after Ctrl-C")
	}
	if code := cmd.ProcessState.ExitCode(); code != 143 {
		t.Errorf("exit %d, want 143 (the container's, after SIGTERM)", code)
	}
	if !strings.Contains(stderr.String(), "stopping run") {
		t.Errorf("stderr does not say it is stopping the run: %q", stderr.String())
	}
	if !strings.Contains(stderr.String(), "CANCELED (UserInitiated): Stopped by user (Ctrl-C)") {
		t.Errorf("stderr does not say how the run ended: %q", stderr.String())
	}
	list, _, _ := in.gantry("ps", "--all", "-o", "json")
	var runs []jobs.Run
	json.Unmarshal([]byte(list), &runs)
	if r := in.describe(runs[0].RunID); r.Status != jobs.StatusCanceled || r.StopCode != jobs.StopUserInitiated {
		t.Fatalf("run: %s %s", r.Status, r.StopCode)
	}
}

func TestUnknownRunIsNotFound(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	for _, args := range [][]string{{"describe", "nosuchrun"}, {"logs", "nosuchrun"}, {"stop", "nosuchrun"}} {
		_, errOut, code := in.gantry(args...)
		if code != exitGantryError || !strings.Contains(errOut, "run nosuchrun") || !strings.Contains(errOut, "not found") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

func TestHTTPAPI(t *testing.T) {
	t.Parallel()
	in := startUp(t, "--http", "127.0.0.1:0")
	addr := logAddr(t, in.log, "HTTP API ready")
	id := in.runDetached("echo", "hi")
	in.waitStatus(id, jobs.StatusSucceeded)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/api/runs/" + id); code != 200 || !strings.Contains(body, `"status":"SUCCEEDED"`) {
		t.Errorf("/api/runs/%s: %d %s", id, code, body)
	}
	if code, body := get("/api/runs?all=1"); code != 200 || !strings.Contains(body, id) {
		t.Errorf("/api/runs: %d %s", code, body)
	}
	if code, body := get("/api/runs/nope"); code != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("/api/runs/nope: %d %s", code, body)
	}
	// A container the run does not have is named, with those it has.
	if _, errOut, code := in.gantry("logs", id, "--container", "nope"); code != exitGantryError ||
		!strings.Contains(errOut, `has no container "nope"; its containers: main`) {
		t.Errorf("logs --container nope: exit %d %s", code, errOut)
	}
	// runs.list's filters.
	for path, want := range map[string]bool{
		"/api/runs?status=SUCCEEDED":            true,
		"/api/runs?status=succeeded,failed":     true,
		"/api/runs?status=FAILED":               false,
		"/api/runs?all=false":                   false,
		"/api/runs?all=true&family=adhoc":       true,
		"/api/runs?all=true&family=nosuch":      false,
		"/api/runs?all=true&cluster=default":    true,
		"/api/runs?all=true&limit=1":            true,
		"/api/runs?status=SUCCEEDED&worker=nah": false,
	} {
		if code, body := get(path); code != 200 || strings.Contains(body, id) != want {
			t.Errorf("%s: %d, lists the run: %v, want %v: %s", path, code, strings.Contains(body, id), want, body)
		}
	}
	for _, path := range []string{"/api/runs?status=bogus", "/api/runs?all=maybe", "/api/runs?limit=-1"} {
		if code, body := get(path); code != 400 || !strings.Contains(body, `"code":"invalid_argument"`) {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
}

func TestContexts(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	var url string
	for _, kv := range in.env {
		if v, ok := strings.CutPrefix(kv, "GANTRY_NATS_URL="); ok {
			url = v
		}
	}
	env := []string{"GANTRY_CONFIG=" + t.TempDir() + "/config.yaml", "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	if _, errOut, code := runBin(t, env, "context", "add", "here", "--nats", url); code != 0 {
		t.Fatalf("context add: %s", errOut)
	}
	runBin(t, env, "context", "add", "nowhere", "--nats", "nats://127.0.0.1:1")
	if out, _, _ := runBin(t, env, "context", "ls"); !strings.Contains(out, "* here") || !strings.Contains(out, "  nowhere") {
		t.Fatalf("context ls:\n%s", out)
	}
	if out, _, code := runBin(t, env, "context", "ls", "-o", "json"); code != 0 ||
		!strings.Contains(out, `"name": "here",`+"\n"+`    "current": true,`) || !strings.Contains(out, `"nats": "nats://127.0.0.1:1"`) {
		t.Fatalf("context ls -o json: exit %d\n%s", code, out)
	}
	if _, errOut, code := runBin(t, env, "ps"); code != 0 {
		t.Fatalf("ps through the current context: %s", errOut)
	}
	if _, errOut, code := runBin(t, env, "ps", "--context", "nowhere"); code != exitGantryError || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Fatalf("--context nowhere: exit %d %s", code, errOut)
	}
	runBin(t, env, "context", "use", "nowhere")
	if _, _, code := runBin(t, append(env, "GANTRY_NATS_URL="+url), "ps"); code != 0 {
		t.Fatal("the environment does not win over the context")
	}
	if _, _, code := runBin(t, env, "ps", "--nats", url); code != 0 {
		t.Fatal("a flag does not win over the context")
	}
	if _, errOut, code := runBin(t, env, "context", "use", "missing"); code != exitGantryError || !strings.Contains(errOut, `no context "missing"`) {
		t.Fatalf("use missing: %d %s", code, errOut)
	}
}

// TestSecondSignalQuitsAtOnce: the first SIGTERM lets running tasks go on
// for --grace; a second one ends gantry up at once, saying so is possible
// on the way. Started again, it stops what it left.
func TestSecondSignalQuitsAtOnce(t *testing.T) {
	t.Parallel()
	in := startUp(t, "--grace", "5m")
	id := in.runDetached("sh", "-c", "echo ready; sleep 300")
	in.waitLog(id, "ready")
	done := make(chan error, 1)
	cmd := in.cmd
	go func() { done <- cmd.Wait() }()
	cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(in.log.String(), "interrupt again to quit at once") {
		if time.Now().After(deadline) {
			t.Fatalf("no hint of a second signal 30s after the first:\n%s", in.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-done:
		t.Fatalf("gantry up ended on the first SIGTERM with a task to wait for:\n%s", in.log)
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("gantry up still running 30s after a second SIGTERM:\n%s", in.log)
	}
	in.cmd = nil
	// The container left running is stopped when gantry up starts again.
	in.upFlags = nil
	in.start()
	if _, errOut, code := in.gantry("stop", id); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, errOut)
	}
	in.waitStatus(id, jobs.StatusCanceled, jobs.StatusFailed)
}

// TestDataDirectoryIsLocked: a second gantry up or server on a data
// directory in use is refused, naming the process that holds it; before,
// both ran, two JetStream servers on one store, and runs' logs were lost.
func TestDataDirectoryIsLocked(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	for _, args := range [][]string{
		{"up", "--data", in.data, "--nats-port", "0"},
		{"server", "--embedded-nats", "--data", in.data, "--nats-port", "0"},
	} {
		_, errOut, code := runBin(t, os.Environ(), args...)
		if code != exitGantryError || !strings.Contains(errOut, "data directory "+in.data+" is in use by another gantry process (pid ") {
			t.Errorf("%s on a data directory in use: exit %d, stderr %q", args[0], code, errOut)
		}
	}
	if _, errOut, code := in.gantry("ps"); code != 0 {
		t.Fatalf("the first gantry up no longer answers: %s", errOut)
	}
}

// TestServerAnswersDuringTheDrain: while gantry up's worker lets a task
// finish after SIGTERM (--grace), its server still answers: ps lists the
// run and stop ends it, and with it the drain. Before, the server stopped
// with the first signal and every command failed for the whole grace
// period.
func TestServerAnswersDuringTheDrain(t *testing.T) {
	t.Parallel()
	in := startUp(t, "--grace", "5m")
	id := in.runDetached("sh", "-c", "echo ready; sleep 300")
	in.waitLog(id, "ready")
	cmd := in.cmd
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(time.Second)
	if out, errOut, code := in.gantry("ps"); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("ps during the drain: exit %d, %q %q", code, out, errOut)
	}
	if _, errOut, code := in.gantry("stop", id); code != 0 {
		t.Fatalf("stop during the drain: exit %d: %s", code, errOut)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("gantry up still draining a minute after its one run was stopped:\n%s", in.log)
	}
	in.cmd = nil
	in.upFlags = nil
	in.start()
	if r := in.describe(id); r.Status != jobs.StatusCanceled {
		t.Fatalf("run stopped during the drain is %s (%s)", r.Status, r.StoppedReason)
	}
}
