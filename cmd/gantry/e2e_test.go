package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
)

// These tests drive the real binary as a user does: `gantry up` with its
// embedded NATS on a free port, the real Docker daemon, and CLI commands.

var gantryBin string

// parallelPerCPU is how many parallel tests run at once per CPU when
// go test is not given -parallel (its default is one per CPU). Most of
// this package's parallel tests drive `gantry up` and wait on Docker,
// NATS, leases and timers: at one per CPU a 2-core machine stayed about
// 80% idle while they ran, and the package took over 10 minutes.
const parallelPerCPU = 3

func TestMain(m *testing.M) {
	flag.Parse()
	if !flagSet("test.parallel") {
		flag.Set("test.parallel", fmt.Sprint(parallelPerCPU*runtime.GOMAXPROCS(0)))
	}
	dir, err := os.MkdirTemp("", "gantry-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gantryBin = filepath.Join(dir, "gantry")
	build := []string{"build", "-o", gantryBin}
	raceLogs := filepath.Join(dir, "race")
	if raceEnabled {
		// Under the race detector the gantry processes the tests start
		// have it too; they inherit GORACE, and write what they find where
		// the end of the tests looks. Each waits 100 ms, not the race
		// detector's default second, before it exits: that second, for a
		// report another goroutine may still be writing, was a second of
		// every CLI command the tests run (each poll of a run's status),
		// and a report takes far less.
		build = append(build, "-race")
		os.Setenv("GORACE", "log_path="+raceLogs+" atexit_sleep_ms=100")
	}
	out, err := exec.Command("go", append(build, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build gantry: %v\n%s", err, out)
		os.Exit(1)
	}
	// The gantry processes the tests start keep their workers' stage
	// directories under the system's temporary directory, and a worker a
	// chaos test kills leaves its attempts' there (/tmp/gantry-stage):
	// under dir, they go with it. The tests' own temporary files too.
	os.Setenv("TMPDIR", dir)
	code := m.Run()
	if found, _ := filepath.Glob(raceLogs + ".*"); len(found) > 0 {
		for _, f := range found {
			b, _ := os.ReadFile(f)
			fmt.Fprintf(os.Stderr, "a gantry process started by the tests found a data race (%s):\n%s\n", filepath.Base(f), b)
		}
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// instance is one `gantry up` under test.
type instance struct {
	t     *testing.T
	data  string
	label string
	env   []string
	cmd   *exec.Cmd
	log   *syncBuffer
	// earlier holds the logs of the lives before this one (restarts).
	earlier strings.Builder
	image   string
	upFlags []string
	// extraEnv is added to the environment of CLI commands (credentials).
	extraEnv []string
	// upEnv is added to gantry up's environment (DOCKER_HOST).
	upEnv []string
}

// startUp starts `gantry up` in a fresh data directory and waits until it
// answers. Everything its worker creates carries gantry.test=<label> and is
// checked for leftovers when the test ends.
func startUp(t *testing.T, flags ...string) *instance {
	t.Helper()
	return startUpEnv(t, nil, flags...)
}

// startUpEnv is startUp with env added to every CLI command's environment.
func startUpEnv(t *testing.T, env []string, flags ...string) *instance {
	t.Helper()
	return startUpWith(t, env, nil, flags...)
}

// startUpWith is startUp with env added to every CLI command's
// environment, and upEnv to gantry up's.
func startUpWith(t *testing.T, env, upEnv []string, flags ...string) *instance {
	t.Helper()
	cli := sampletest.Docker(t)
	in := &instance{t: t, data: t.TempDir(), label: "e2e-" + sanitizeID(t.Name()) + fmt.Sprint(time.Now().UnixNano()%100000),
		image: sampletest.Image(t), upFlags: flags, extraEnv: env, upEnv: upEnv}
	sampletest.Cleanup(t, cli, in.label)
	// Registered before the start, so that a gantry up that never answers
	// is stopped too.
	t.Cleanup(func() {
		in.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		left, err := cli.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", sampletest.LabelKey+"="+in.label))})
		if err == nil && len(left) > 0 {
			t.Errorf("%d containers left behind after the test", len(left))
		}
	})
	in.start()
	return in
}

func (in *instance) start() {
	t := in.t
	t.Helper()
	os.Remove(filepath.Join(in.data, "nats.url"))
	args := append([]string{"up", "--data", in.data, "--nats-port", "0", "--id", "w" + in.label[len(in.label)-5:],
		"--container-label", sampletest.LabelKey + "=" + in.label, "--grace", "5s"}, in.upFlags...)
	in.cmd = exec.Command(gantryBin, args...)
	if in.upEnv != nil {
		in.cmd.Env = append(os.Environ(), in.upEnv...)
	}
	if in.log != nil {
		fmt.Fprintf(&in.earlier, "%s--- gantry up restarted ---\n", in.log)
	}
	in.log = &syncBuffer{}
	in.cmd.Stdout, in.cmd.Stderr = in.log, in.log
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(in.data, "nats.url")); err == nil && len(b) > 0 {
			in.env = append(append(os.Environ(), in.extraEnv...), "GANTRY_NATS_URL="+strings.TrimSpace(string(b)))
			if _, _, code := in.gantry("ps"); code == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gantry up did not come up in 30s:\n%s", in.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (in *instance) stop() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- in.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		in.cmd.Process.Kill()
		<-done
		in.t.Errorf("gantry up did not stop within 30s of SIGTERM:\n%s", in.log)
	}
	in.cmd = nil
}

// gantry runs a CLI command against the instance.
func (in *instance) gantry(args ...string) (stdout, stderr string, code int) {
	in.t.Helper()
	return runBin(in.t, in.env, args...)
}

func runBin(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gantryBin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("gantry %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (in *instance) describe(id string) *jobs.Run {
	in.t.Helper()
	out, errOut, code := in.gantry("describe", id, "-o", "json")
	if code != 0 {
		in.t.Fatalf("describe %s: exit %d: %s", id, code, errOut)
	}
	var r jobs.Run
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		in.t.Fatalf("describe %s: %v\n%s", id, err, out)
	}
	return &r
}

// waitStatus polls until the run reaches one of the statuses.
func (in *instance) waitStatus(id string, want ...jobs.Status) *jobs.Run {
	in.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := in.describe(id)
		for _, w := range want {
			if r.Status == w {
				return r
			}
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("run %s is %s after 2m, want %v:\n%s\n%s", id, r.Status, want, in.stuck(r), in.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stuck says where a run that did not end stands, for a test's failure:
// its reason and attempts, and an array parent's children's.
func (in *instance) stuck(r *jobs.Run) string {
	var b strings.Builder
	line := func(r *jobs.Run) {
		fmt.Fprintf(&b, "%s %s %q, %d attempts", r.RunID, r.Status, r.StatusReason, len(r.Attempts))
		if n := len(r.Attempts); n > 0 {
			a := r.Attempts[n-1]
			fmt.Fprintf(&b, ", the last on %q %s %q", a.Worker, a.Status, a.StoppedReason)
		}
		b.WriteString("\n")
	}
	line(r)
	if r.ArrayProperties != nil && r.ArrayJobID == "" {
		for i := range min(r.ArrayProperties.Size, 10) {
			out, _, code := in.gantry("describe", jobs.ArrayChildID(r.RunID, i), "-o", "json")
			var c jobs.Run
			if code != 0 || json.Unmarshal([]byte(out), &c) != nil {
				fmt.Fprintf(&b, "child %d: no description (exit %d)\n", i, code)
				continue
			}
			line(&c)
		}
	}
	return b.String()
}

// waitLog polls until the run's log has a line, so that the container is
// known to be up (a signal sent before its handler is installed is lost).
func (in *instance) waitLog(id, line string) {
	in.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if out, _, _ := in.gantry("logs", id); strings.Contains(out, line+"\n") {
			return
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("run %s never printed %q:\n%s", id, line, in.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (in *instance) runDetached(args ...string) string {
	in.t.Helper()
	out, errOut, code := in.gantry(append([]string{"run", "-d", "--image", in.image, "--"}, args...)...)
	if code != 0 {
		in.t.Fatalf("run -d: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	if !regexp.MustCompile(`^[0-9a-z]{26}$`).MatchString(id) {
		in.t.Fatalf("run -d printed %q, want only a run id", out)
	}
	return id
}

func TestAttachedRunStreamsOutputAndExitsWithTaskCode(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	tests := []struct {
		name, script   string
		code           int
		stdout, stderr string
		status         jobs.Status
	}{
		{"fails", "echo hello; echo oops >&2; exit 3", 3, "hello\n", "oops\n", jobs.StatusFailed},
		{"succeeds", "echo all good", 0, "all good\n", "", jobs.StatusSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := in.gantry("run", "--image", in.image, "--", "sh", "-c", tt.script)
			if code != tt.code || out != tt.stdout || errOut != tt.stderr {
				t.Fatalf("got exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out, errOut, tt.code, tt.stdout, tt.stderr)
			}
			list, _, _ := in.gantry("ps", "--all", "-o", "json")
			var runs []jobs.Run
			if err := json.Unmarshal([]byte(list), &runs); err != nil || len(runs) == 0 {
				t.Fatalf("ps --all -o json: %v\n%s", err, list)
			}
			r := in.describe(runs[0].RunID)
			if r.Status != tt.status || r.ExitCode == nil || *r.ExitCode != tt.code {
				t.Fatalf("describe: status %s exit %v, want %s %d", r.Status, r.ExitCode, tt.status, tt.code)
			}
		})
	}
}

func TestDetachedRunIsRecorded(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	id := in.runDetached("sh", "-c", "echo one; echo two")
	r := in.waitStatus(id, jobs.StatusSucceeded, jobs.StatusFailed)
	if r.Status != jobs.StatusSucceeded || r.StartedAt == nil || r.FinishedAt == nil || r.Worker == "" {
		t.Fatalf("run: %+v", r)
	}
	if len(r.Attempts) != 1 || r.Attempts[0].Status != jobs.StatusSucceeded || len(r.Containers) != 1 || r.Containers[0].Name != "main" {
		t.Fatalf("attempts %+v containers %+v", r.Attempts, r.Containers)
	}
	out, _, _ := in.gantry("describe", id, "-o", "json")
	for _, field := range []string{"runId", "status", "exitCode", "stopCode", "stoppedReason", "taskDefinition",
		"cluster", "worker", "createdAt", "startedAt", "finishedAt", "attempts", "containers"} {
		if !strings.Contains(out, `"`+field+`"`) {
			t.Errorf("describe -o json lacks %q", field)
		}
	}
	if y, _, code := in.gantry("describe", id, "-o", "yaml"); code != 0 || !strings.Contains(y, "runId: "+id) {
		t.Errorf("describe -o yaml: exit %d\n%s", code, y)
	}
	if tbl, _, _ := in.gantry("describe", id); !strings.Contains(tbl, "SUCCEEDED") {
		t.Errorf("describe table:\n%s", tbl)
	}
	if logs, _, _ := in.gantry("logs", id); logs != "one\ntwo\n" {
		t.Errorf("logs = %q", logs)
	}
}

func TestMissingImageFailsWithReason(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	_, errOut, code := in.gantry("run", "--image", "gantry/no-such-image:1", "--", "true")
	if code != exitGantryError {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitGantryError, errOut)
	}
	if !strings.Contains(errOut, "gantry/no-such-image:1") {
		t.Errorf("stderr does not name the image: %s", errOut)
	}
	list, _, _ := in.gantry("ps", "--all", "-o", "json")
	var runs []jobs.Run
	json.Unmarshal([]byte(list), &runs)
	r := in.describe(runs[0].RunID)
	if r.Status != jobs.StatusFailed || r.StopCode != jobs.StopFailedToStart || !strings.Contains(r.StoppedReason, "gantry/no-such-image:1") {
		t.Fatalf("run: status %s stopCode %s reason %q", r.Status, r.StopCode, r.StoppedReason)
	}
}

// oomLater runs out of memory a second after it starts. Docker learns of
// an OOM kill from containerd, whose shim watches the container's memory
// cgroup from just after the start: under load a process killed within
// milliseconds of its start can die before that watch, and the daemon
// then never reports the OOM kill (no event, no flag). gantry can only
// report what the daemon knows; the tests give it time to know.
const oomLater = "sleep 1; exec alloc 256"

func TestOOMKillIsRecorded(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	_, errOut, code := in.gantry("run", "--image", in.image, "--memory", "16", "--", "sh", "-c", oomLater)
	if code != 137 {
		t.Errorf("exit %d, want 137 (SIGKILL by the OOM killer)", code)
	}
	// The task cannot say it was killed: gantry run does.
	if !strings.Contains(errOut, "container main was killed for using more than its 16 MiB (OutOfMemoryError") {
		t.Errorf("stderr does not say the container was killed for its memory: %q", errOut)
	}
	list, _, _ := in.gantry("ps", "--all", "-o", "json")
	var runs []jobs.Run
	json.Unmarshal([]byte(list), &runs)
	r := in.describe(runs[0].RunID)
	if r.Status != jobs.StatusFailed || len(r.Containers) != 1 || !r.Containers[0].OOMKilled ||
		!strings.Contains(strings.ToLower(r.StoppedReason), "memory") {
		t.Fatalf("run: status %s reason %q containers %+v", r.Status, r.StoppedReason, r.Containers)
	}
}

func TestStopCancelsRunningRun(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	id := in.runDetached("sh", "-c", "echo ready; sleep 300")
	in.waitLog(id, "ready")
	start := time.Now()
	// It says what the stop did, not the status before it (RUNNING).
	if out, errOut, code := in.gantry("stop", id); code != 0 || out != id+"\tstopping\n" {
		t.Fatalf("stop: exit %d: %q %s, want %q", code, out, errOut, id+"\tstopping\n")
	}
	r := in.waitStatus(id, jobs.StatusCanceled, jobs.StatusFailed, jobs.StatusSucceeded)
	if r.Status != jobs.StatusCanceled || r.StopCode != jobs.StopUserInitiated {
		t.Fatalf("run: status %s stopCode %s reason %q", r.Status, r.StopCode, r.StoppedReason)
	}
	t.Logf("stopped in %s", time.Since(start))
}

func TestStopQueuedRunNeverStarts(t *testing.T) {
	t.Parallel()
	in := startUp(t, "--slots", "1")
	blocker := in.runDetached("sh", "-c", "echo ready; sleep 300")
	in.waitLog(blocker, "ready")
	queued := in.runDetached("sh", "-c", "echo should-not-run")
	if out, errOut, code := in.gantry("stop", queued); code != 0 || out != queued+"\tCANCELED\n" {
		t.Fatalf("stop: exit %d: %q %s", code, out, errOut)
	}
	if r := in.describe(queued); r.Status != jobs.StatusCanceled {
		t.Fatalf("queued run after stop: %s", r.Status)
	}
	in.gantry("stop", blocker)
	in.waitStatus(blocker, jobs.StatusCanceled)
	// The worker takes the canceled job, sees the cancellation and drops it.
	time.Sleep(time.Second)
	if logs, _, _ := in.gantry("logs", queued); logs != "" {
		t.Fatalf("canceled run ran: %q", logs)
	}
}

func TestTimeoutStopsRun(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	_, errOut, code := in.gantry("run", "--timeout", "1s", "--image", in.image, "--", "sleep", "60")
	if code != exitTimeout {
		t.Fatalf("exit %d, want %d: %s", code, exitTimeout, errOut)
	}
	if !strings.Contains(errOut, "timeout") {
		t.Errorf("stderr does not say it timed out: %s", errOut)
	}
}

func TestRetriesRecordEachAttempt(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	_, _, code := in.gantry("run", "--attempts", "2", "--image", in.image, "--", "sh", "-c", "echo try $GANTRY_ATTEMPT; exit 4")
	if code != 4 {
		t.Fatalf("exit %d, want 4", code)
	}
	list, _, _ := in.gantry("ps", "--all", "-o", "json")
	var runs []jobs.Run
	json.Unmarshal([]byte(list), &runs)
	r := in.describe(runs[0].RunID)
	if len(r.Attempts) != 2 || r.Attempts[0].Status != jobs.StatusFailed || r.Attempts[1].Status != jobs.StatusFailed {
		t.Fatalf("attempts: %+v", r.Attempts)
	}
	if logs, _, _ := in.gantry("logs", r.RunID); logs != "try 1\ntry 2\n" {
		t.Errorf("logs = %q", logs)
	}
	if logs, _, _ := in.gantry("logs", r.RunID, "--attempt", "2"); logs != "try 2\n" {
		t.Errorf("logs --attempt 2 = %q", logs)
	}
}

func TestLogsKeepOrderAndLoseNothing(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	t.Run("100k lines followed live equal the replay", func(t *testing.T) {
		id := in.runDetached("lines", "100000")
		live, errOut, code := in.gantry("logs", "-f", id)
		if code != 0 {
			t.Fatalf("logs -f: exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(live, "\n"), "\n")
		if len(lines) != 100000 {
			t.Fatalf("logs -f gave %d lines, want 100000", len(lines))
		}
		for i, l := range lines {
			if want := fmt.Sprintf("line %06d ", i+1); !strings.HasPrefix(l, want) || len(l) != 64 {
				t.Fatalf("line %d = %q, want prefix %q and 64 bytes", i+1, l, want)
			}
		}
		replay, _, _ := in.gantry("logs", id)
		if replay != live {
			t.Fatalf("replay (%d bytes) differs from what was followed (%d bytes)", len(replay), len(live))
		}
	})
	t.Run("a 1 MiB line stays whole", func(t *testing.T) {
		out, errOut, code := in.gantry("run", "--image", in.image, "--", "bigline", "1048576")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if len(out) != 1048577 || strings.Count(out, "\n") != 1 {
			t.Fatalf("got %d bytes with %d newlines, want one line of 1048576 bytes", len(out), strings.Count(out, "\n"))
		}
	})
	t.Run("a last line without newline comes back without one", func(t *testing.T) {
		const want = "one\ntwo"
		id := in.runDetached("sh", "-c", "echo one; echo -n two")
		for _, args := range [][]string{{"logs", "-f", id}, {"logs", id}} {
			if out, errOut, code := in.gantry(args...); out != want || code != 0 {
				t.Errorf("%s: printed %q (exit %d, %s), want %q", args, out, code, errOut, want)
			}
		}
		if out, errOut, code := in.gantry("run", "--image", in.image, "--", "echo", "-n", "{}"); out != "{}" || code != 0 {
			t.Errorf("run attached: printed %q (exit %d, %s), want %q", out, code, errOut, "{}")
		}
	})
	t.Run("bytes that are not UTF-8 come back as written", func(t *testing.T) {
		// latin-1, binary junk on stderr, and a last line without newline.
		id := in.runDetached("sh", "-c", `echo 'caf#' | tr '#' '\351'; echo 'ok é'; `+
			`echo 'junk:abc' | tr abc '\200\377\0' >&2; echo -n 'end#' | tr '#' '\376'`)
		const wantOut, wantErr = "caf\xe9\nok é\nend\xfe", "junk:\x80\xff\x00\n"
		// -f may say first, on stderr, that it waits for the run to start.
		if out, errOut, code := in.gantry("logs", "-f", id); out != wantOut || errOut != wantErr && !strings.HasSuffix(errOut, "\n"+wantErr) || code != 0 {
			t.Errorf("logs -f: printed %q and %q on stderr (exit %d), want %q and %q", out, errOut, code, wantOut, wantErr)
		}
		for _, args := range [][]string{{"logs", id}, {"logs", id, "--tail", "4"}, {"logs", id, "--since", "1h"}} {
			if out, errOut, code := in.gantry(args...); out != wantOut || errOut != wantErr || code != 0 {
				t.Errorf("%s: printed %q and %q on stderr (exit %d), want %q and %q", args, out, errOut, code, wantOut, wantErr)
			}
		}
		for _, args := range [][]string{{"logs", id, "--prefix"}, {"logs", id, "-t"}} {
			out, errOut, _ := in.gantry(args...)
			if !strings.Contains(out, "caf\xe9\n") || !strings.Contains(out, "end\xfe") ||
				!strings.Contains(errOut, "junk:\x80\xff\x00\n") || strings.Contains(out+errOut, "\ufffd") {
				t.Errorf("%s: printed %q and %q on stderr, want the bytes written", args, out, errOut)
			}
		}
	})
}

func TestRestartKeepsHistoryAndLogs(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	out, _, code := in.gantry("run", "--image", in.image, "--", "sh", "-c", "echo before restart")
	if code != 0 || out != "before restart\n" {
		t.Fatalf("run: exit %d out %q", code, out)
	}
	list, _, _ := in.gantry("ps", "--all", "-o", "json")
	in.stop()
	in.start()
	again, _, _ := in.gantry("ps", "--all", "-o", "json")
	if again != list {
		t.Fatalf("history changed across restart:\nbefore %s\nafter %s", list, again)
	}
	var runs []jobs.Run
	json.Unmarshal([]byte(again), &runs)
	if logs, _, _ := in.gantry("logs", runs[0].RunID); logs != "before restart\n" {
		t.Fatalf("logs after restart = %q", logs)
	}
}

// TestRestartHandsARunningJobBack: gantry up stopped (SIGTERM) while a task
// runs past --grace stops the task and hands its job back to the queue; up
// again, it runs the job (no new one: a redelivery) as attempt 2, and the
// run, which allows one attempt, succeeds. A kill -9 would have got as
// much (WorkerLost). The job comes back soon after the restart, not once
// its lease runs out: the lease here (10 min) is far longer than
// waitStatus waits (2 min).
func TestRestartHandsARunningJobBack(t *testing.T) {
	t.Parallel()
	in := startUp(t, "--grace", "1s", "--lease", "10m")
	id := in.runDetached("sh", "-c", `echo attempt $GANTRY_ATTEMPT; if [ "$GANTRY_ATTEMPT" = 1 ]; then sleep 600; fi`)
	in.waitLog(id, "attempt 1")
	in.stop()
	in.start()
	r := in.waitStatus(id, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled)
	if r.Status != jobs.StatusSucceeded || len(r.Attempts) != 2 || r.Attempts[0].StopCode != jobs.StopTerminationNotice ||
		!r.Attempts[1].Redelivery || r.Attempts[1].Status != jobs.StatusSucceeded {
		b, _ := json.MarshalIndent(r, "", "  ")
		t.Fatalf("after the restart:\n%s\n%s", b, in.log)
	}
	if logs, _, _ := in.gantry("logs", id); !strings.Contains(logs, "attempt 2\n") {
		t.Fatalf("logs %q, want attempt 2's", logs)
	}
}

func TestBadInputIsOneLineAndExit125(t *testing.T) {
	t.Parallel()
	env := append(os.Environ(), "GANTRY_NATS_URL=nats://127.0.0.1:1")
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown flag", env, []string{"ps", "--bogus"}, "unknown flag: --bogus"},
		{"unreachable NATS", env, []string{"ps"}, "cannot reach NATS at nats://127.0.0.1:1"},
		{"unreachable NATS for run", env, []string{"run", "--image", "x", "--", "true"}, "is `gantry up` running?"},
		{"run without what", env, []string{"run"}, "what to run?"},
		{"an image where a family goes", env, []string{"run", "gantry/samples:latest", "echo", "hi"},
			"to run an image: gantry run --image gantry/samples:latest -- CMD"},
		{"NATS port out of range", env, []string{"up", "--data", t.TempDir(), "--nats-port", "99999"},
			"port 99999: want 1 to 65535, or 0 for a free one (--nats-port)"},
		{"bad output", env, []string{"ps", "-o", "xml"}, "want table, wide, json or yaml"},
		{"bad env", env, []string{"run", "--image", "x", "--env", "NOVALUE", "--", "true"}, "--env \"NOVALUE\": want K=V"},
		{"timeout beyond 50 years", env, []string{"run", "--image", "x", "--timeout", "900000h", "--", "true"},
			"--timeout 900000h0m0s: must be at most 438000h0m0s (50 years)"},
		{"deadline beyond 50 years", env, []string{"run", "--image", "x", "--deadline", "2562047h", "--", "true"},
			"--deadline 2562047h0m0s: must be at most 438000h0m0s (50 years)"},
		// Checked before anything starts (a data directory that cannot be
		// made fails at once without the check).
		{"no data retention", env, []string{"up", "--data", "/dev/null/gantry", "--nats-port", "0", "--data-retention", "0"},
			"--data-retention 0s: must be more than 0"},
		{"negative data retention", env, []string{"server", "--data", t.TempDir(), "--data-retention", "-1h"},
			"--data-retention -1h0m0s: must be more than 0"},
		{"unreachable Docker", append(os.Environ(), "DOCKER_HOST=unix:///nonexistent/docker.sock"),
			[]string{"up", "--data", t.TempDir(), "--nats-port", "0"}, "cannot reach the Docker daemon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runBin(t, tt.env, tt.args...)
			if code != exitGantryError {
				t.Errorf("exit %d, want 125", code)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q does not say %q", errOut, tt.want)
			}
			if lines := strings.Count(strings.TrimSpace(lastLines(errOut)), "\n"); lines != 0 {
				t.Errorf("error is not one line: %q", errOut)
			}
		})
	}
}

// lastLines drops the log lines `gantry up` prints before its error.
func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
