package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"
	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
	"github.com/nats-io/nats.go"
)

// These tests cover the worker fleet: presence, drain, capacity, loss and
// redelivery, restarts, retries and the safe defaults.

func (in *instance) workers() []jobs.WorkerInfo {
	in.t.Helper()
	out, errOut, code := in.gantry("workers", "ls", "-o", "json")
	if code != 0 {
		in.t.Fatalf("workers ls: exit %d: %s", code, errOut)
	}
	var ws []jobs.WorkerInfo
	if err := json.Unmarshal([]byte(out), &ws); err != nil {
		in.t.Fatalf("workers ls: %v\n%s", err, out)
	}
	return ws
}

// waitFor polls cond every 100 ms for up to two minutes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, 2*time.Minute, what, cond)
}

// waitForWithin is waitFor with its own time limit.
func waitForWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWorkersListDrainAndActivate(t *testing.T) {
	t.Parallel()
	in := startUp(t, "--label", "zone=a", "--cpu", "2048", "--memory", "4096")
	ws := in.workers()
	if len(ws) != 1 || ws[0].Cluster != "default" || ws[0].Labels["zone"] != "a" || ws[0].State != jobs.WorkerActive ||
		ws[0].Capacity != (jobs.Resources{CPU: 2048, Memory: 4096, Slots: 4}) || ws[0].LastHeartbeat.IsZero() {
		t.Fatalf("workers: %+v", ws)
	}
	id := ws[0].ID
	running := in.runDetached("sh", "-c", "echo ready; sleep 2")
	in.waitLog(running, "ready")
	if out, errOut, code := in.gantry("workers", "drain", id); code != 0 || !strings.Contains(out, "DRAINING") {
		t.Fatalf("drain: exit %d: %s%s", code, out, errOut)
	}
	queued := in.runDetached("sh", "-c", "echo after drain")
	if r := in.waitStatus(running, jobs.StatusSucceeded, jobs.StatusFailed); r.Status != jobs.StatusSucceeded {
		t.Fatalf("run started before the drain: %s %s", r.Status, r.StoppedReason)
	}
	waitFor(t, "the queued run to say the worker drains", func() bool {
		r := in.describe(queued)
		if r.Status != jobs.StatusQueued {
			t.Fatalf("a draining worker took a new run: %s", r.Status)
		}
		return strings.Contains(r.StatusReason, "draining")
	})
	var x jobs.WorkerInfo
	out, _, _ := in.gantry("workers", "describe", id, "-o", "json")
	if err := json.Unmarshal([]byte(out), &x); err != nil || x.State != jobs.WorkerDraining {
		t.Fatalf("describe: %v %+v", err, x)
	}
	if _, errOut, code := in.gantry("workers", "activate", id); code != 0 {
		t.Fatalf("activate: %s", errOut)
	}
	in.waitStatus(queued, jobs.StatusSucceeded)
	if _, errOut, code := in.gantry("workers", "describe", "nobody"); code != exitGantryError || !strings.Contains(errOut, "not live") {
		t.Fatalf("describe of an unknown worker: exit %d: %s", code, errOut)
	}
}

func TestCapacityAndUnplaceableRun(t *testing.T) {
	t.Parallel()
	in := startUp(t, "--memory", "512")
	big := in.runDetachedFlags([]string{"--memory", "32000"}, "true")
	waitFor(t, "the 32000 MiB run to say why it waits", func() bool {
		return strings.Contains(in.describe(big).StatusReason, "no worker in cluster default has 32000 MiB of memory")
	})
	if ps, _, _ := in.gantry("ps"); !strings.Contains(ps, "no worker in cluster default has 32000 MiB of memory") {
		t.Errorf("ps does not show the reason:\n%s", ps)
	}
	in.gantry("stop", big)
	a := in.runDetachedFlags([]string{"--memory", "400"}, "sleep", "1")
	b := in.runDetachedFlags([]string{"--memory", "400"}, "sleep", "1")
	ra := in.waitStatus(a, jobs.StatusSucceeded, jobs.StatusFailed)
	rb := in.waitStatus(b, jobs.StatusSucceeded, jobs.StatusFailed)
	if ra.Status != jobs.StatusSucceeded || rb.Status != jobs.StatusSucceeded {
		t.Fatalf("runs: %s %q, %s %q", ra.Status, ra.StoppedReason, rb.Status, rb.StoppedReason)
	}
	first, second := ra, rb
	if rb.StartedAt.Before(*ra.StartedAt) {
		first, second = rb, ra
	}
	if second.StartedAt.Before(*first.FinishedAt) {
		t.Fatalf("two 400 MiB runs at once on a 512 MiB worker: %s–%s and %s–%s",
			first.StartedAt, first.FinishedAt, second.StartedAt, second.FinishedAt)
	}
}

func (in *instance) runDetachedFlags(flags []string, args ...string) string {
	in.t.Helper()
	all := append(append([]string{"run", "-d", "--image", in.image}, flags...), "--")
	out, errOut, code := in.gantry(append(all, args...)...)
	if code != 0 {
		in.t.Fatalf("run -d: exit %d: %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

func (in *instance) client() *client.Client {
	in.t.Helper()
	var url string
	for _, e := range in.env {
		if v, ok := strings.CutPrefix(e, "GANTRY_NATS_URL="); ok {
			url = v
		}
	}
	nc, err := nats.Connect(url)
	if err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(nc.Close)
	c, err := client.New(nc)
	if err != nil {
		in.t.Fatal(err)
	}
	return c
}

func TestEvaluateOnExit(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	c := in.client()
	strategy := &jobs.RetryStrategy{Attempts: 3, Backoff: &jobs.Backoff{InitialSeconds: 0.2},
		EvaluateOnExit: []jobs.EvaluateOnExit{{OnExitCode: "2", Action: "RETRY"}, {OnExitCode: "1", Action: "EXIT"}}}
	submit := func(code int) string {
		td := fmt.Sprintf(`{"family":"eval","containerDefinitions":[{"name":"main","image":%q,"command":["sh","-c","exit %d"]}]}`, in.image, code)
		r, err := c.Submit(context.Background(), &jobs.SubmitRequest{TaskDefinition: json.RawMessage(td), RetryStrategy: strategy})
		if err != nil {
			t.Fatal(err)
		}
		return r.RunID
	}
	retried, stopped := submit(2), submit(1)
	r := in.waitStatus(retried, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled)
	if len(r.Attempts) != 3 || *r.ExitCode != 2 {
		t.Fatalf("exit 2: %d attempts, exit %v; want 3 attempts", len(r.Attempts), r.ExitCode)
	}
	for i := 1; i < 3; i++ {
		if gap := r.Attempts[i].CreatedAt; r.Attempts[i].NotBefore == nil || r.Attempts[i].NotBefore.Before(gap) {
			t.Errorf("attempt %d has no backoff: %+v", i+1, r.Attempts[i])
		}
	}
	if r := in.waitStatus(stopped, jobs.StatusFailed); len(r.Attempts) != 1 {
		t.Fatalf("exit 1: %d attempts, want 1 (EXIT)", len(r.Attempts))
	}
}

func TestDockerSocketIsRefused(t *testing.T) {
	t.Parallel()
	in := startUp(t, "--allow-host-path", "/var/run")
	c := in.client()
	td := fmt.Sprintf(`{"family":"sock","containerDefinitions":[{"name":"main","image":%q,"command":["true"],
		"mountPoints":[{"sourceVolume":"sock","containerPath":"/var/run/docker.sock"}]}],
		"volumes":[{"name":"sock","host":{"sourcePath":"/var/run/docker.sock"}}]}`, in.image)
	r, err := c.Submit(context.Background(), &jobs.SubmitRequest{TaskDefinition: json.RawMessage(td)})
	if err != nil {
		t.Fatal(err)
	}
	got := in.waitStatus(r.RunID, jobs.StatusFailed, jobs.StatusSucceeded)
	if got.Status != jobs.StatusFailed || !strings.Contains(got.StoppedReason, "Docker socket") {
		t.Fatalf("run: %s %q", got.Status, got.StoppedReason)
	}
}

func TestUnauthenticatedClientIsRefused(t *testing.T) {
	t.Parallel()
	in := startUpEnv(t, []string{"GANTRY_NATS_USER=gantry", "GANTRY_NATS_PASSWORD=s3cret"},
		"--user", "gantry", "--password", "s3cret", "--http", "127.0.0.1:0")
	addr := logAddr(t, in.log, "HTTP API ready")
	if out, _, code := in.gantry("run", "--image", in.image, "--", "echo", "authed"); code != 0 || out != "authed\n" {
		t.Fatalf("authenticated run: exit %d %q", code, out)
	}
	// The HTTP API asks for the same credentials; /healthz does not.
	get := func(path, user, pass string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/api/runs?all=true", "", ""); code != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthenticated"`) {
		t.Errorf("HTTP API without credentials: %d %s", code, body)
	}
	if code, _ := get("/api/runs?all=true", "gantry", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("HTTP API with a wrong password: %d", code)
	}
	if code, body := get("/api/runs?all=true", "gantry", "s3cret"); code != 200 || !strings.Contains(body, `"runs":[{`) {
		t.Errorf("HTTP API with the credentials: %d %s", code, body)
	}
	if code, _ := get("/healthz", "", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	var url string
	for _, e := range in.env {
		if v, ok := strings.CutPrefix(e, "GANTRY_NATS_URL="); ok {
			url = v
		}
	}
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"GANTRY_NATS_URL=" + url}, "asks for credentials and none were given"},
		{[]string{"GANTRY_NATS_URL=" + url, "GANTRY_NATS_USER=gantry", "GANTRY_NATS_PASSWORD=wrong"}, "refused the credentials"},
	} {
		_, errOut, code := runBin(t, append(os.Environ(), c.env...), "ps")
		if code != exitGantryError || !strings.Contains(errOut, c.want) {
			t.Fatalf("%v: exit %d: %s; want %q", c.env[1:], code, errOut, c.want)
		}
	}
	if _, errOut, code := runBin(t, os.Environ(), "up", "--user", "u", "--data", t.TempDir(), "--nats-port", "0"); code != exitGantryError ||
		!strings.Contains(errOut, "--user and --password go together") {
		t.Fatalf("up --user without --password: exit %d: %s", code, errOut)
	}
}

// proc is a gantry process started by a test.
type proc struct {
	cmd *exec.Cmd
	log *syncBuffer
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, nil, args...)
}

// startProcEnv is startProc with env added to the process's environment.
func startProcEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(gantryBin, args...), log: &syncBuffer{}}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill() // SIGKILL: no goodbye
	p.cmd.Wait()
}

// fleet is a gantry server of its own (embedded NATS) for a test that
// starts its workers apart, as processes.
type fleet struct {
	cli   *dockerclient.Client
	in    *instance // CLI commands against the server
	url   string    // its NATS URL
	label string    // on everything the workers create (--container-label), removed at the end
	lease string
}

// startFleet starts a server whose jobs' lease is lease (--lease), and
// waits until it answers; label, prefix and a number, marks what the
// fleet's workers create.
func startFleet(t *testing.T, prefix, lease string) *fleet {
	t.Helper()
	f := &fleet{cli: sampletest.Docker(t), label: fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%100000), lease: lease}
	sampletest.Cleanup(t, f.cli, f.label)
	_, f.url = startEmbeddedServer(t, t.TempDir(), "--lease", lease)
	f.in = &instance{t: t, env: append(os.Environ(), "GANTRY_NATS_URL="+f.url), image: sampletest.Image(t)}
	waitFor(t, "the server", func() bool { _, _, code := f.in.gantry("ps"); return code == 0 })
	return f
}

// workerArgs are the arguments of the fleet's worker id.
func (f *fleet) workerArgs(id string) []string {
	return []string{"worker", "--nats", f.url, "--id", id, "--lease", f.lease, "--grace", "5s",
		"--container-label", sampletest.LabelKey + "=" + f.label}
}

// startEmbeddedServer starts gantry server --embedded-nats with args on
// a NATS port of its own choosing (--nats-port 0), its data in data, and
// returns it with the URL it wrote to DATA/nats.url. A port picked here
// and freed for the server could be taken meanwhile, as the local end of
// another test's connection.
func startEmbeddedServer(t *testing.T, data string, args ...string) (*proc, string) {
	t.Helper()
	p := startProc(t, append([]string{"server", "--embedded-nats", "--nats-port", "0", "--data", data}, args...)...)
	return p, waitNATSURL(t, p, data)
}

// waitNATSURL waits for the URL the embedded NATS server of p writes to
// DATA/nats.url once it listens.
func waitNATSURL(t *testing.T, p *proc, data string) string {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(data, "nats.url")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return string(bytes.TrimSpace(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s wrote no DATA/nats.url in 2m:\n%s", p.cmd.Args, p.log)
		}
	}
}

// logAddr waits for the log line with msg in log and returns its addr
// field: a listener given port 0 logs the address it has.
func logAddr(t *testing.T, log *syncBuffer, msg string) string {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(msg) + `.*\baddr=([^\s"]+)`)
	var addr string
	waitFor(t, "log line "+msg, func() bool {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return addr
}

// natsPort is the port of a nats://host:port URL.
func natsPort(t *testing.T, url string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(url, "nats://"))
	if err != nil {
		t.Fatalf("NATS URL %q: %v", url, err)
	}
	return port
}

// TestKilledWorkerRunIsRedeliveredAndRestartReconciles runs a server and
// two worker processes; the worker that runs a job is killed with SIGKILL,
// the job finishes on the other with two attempts recorded, and the killed
// worker, restarted, stops the container it left running.
func TestKilledWorkerRunIsRedeliveredAndRestartReconciles(t *testing.T) {
	t.Parallel()
	f := startFleet(t, "e2e-kill", "3s")
	cli, in, label, workerArgs := f.cli, f.in, f.label, f.workerArgs
	procs := map[string]*proc{}
	for _, id := range []string{label + "-a", label + "-b"} {
		procs[id] = startProc(t, workerArgs(id)...)
	}
	waitFor(t, "two workers", func() bool { return len(in.workers()) == 2 })

	id := in.runDetached("sh", "-c", "echo ready; sleep 8; echo done")
	in.waitLog(id, "ready")
	first := in.describe(id).Worker
	victim := procs[first]
	if victim == nil {
		t.Fatalf("run is on %q, not one of ours", first)
	}
	victim.kill()
	r := in.waitStatus(id, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled)
	if r.Status != jobs.StatusSucceeded || len(r.Attempts) != 2 {
		t.Fatalf("run: %s, %d attempts: %+v\nserver and worker logs elsewhere", r.Status, len(r.Attempts), r.Attempts)
	}
	lost, next := r.Attempts[0], r.Attempts[1]
	if lost.StopCode != jobs.StopWorkerLost || lost.Worker != first || next.Worker == first || next.Status != jobs.StatusSucceeded {
		t.Fatalf("attempts: %+v", r.Attempts)
	}
	if logs, _, _ := in.gantry("logs", id, "--attempt", "2"); logs != "ready\ndone\n" {
		t.Errorf("logs of attempt 2: %q", logs)
	}

	// The killed worker's container still runs; restarted, the worker stops
	// and removes it.
	left := func() int {
		list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", sampletest.LabelKey+"="+label), filters.Arg("label", "gantry.worker="+first))})
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	if left() == 0 {
		t.Log("the killed worker's container ended before the restart")
	}
	startProc(t, workerArgs(first)...)
	waitFor(t, "the restarted worker to remove its leftover container", func() bool { return left() == 0 })
	if r := in.describe(id); r.Status != jobs.StatusSucceeded || len(r.Attempts) != 2 {
		t.Fatalf("after restart: %s with %d attempts", r.Status, len(r.Attempts))
	}
}

// TestRestartedWorkerHandsBackItsJobAtOnce: a worker killed with SIGKILL
// while it runs a task, then restarted, stops the container it left and
// hands the job back to the queue at once, on the ack subject the
// container kept: the next attempt runs on it well before the lease (10
// minutes here, longer than any wait of this test) would have run out,
// which only the hand-back explains. The stopped attempt is recorded
// WorkerLost and does not count against --attempts 1.
func TestRestartedWorkerHandsBackItsJobAtOnce(t *testing.T) {
	t.Parallel()
	f := startFleet(t, "e2e-restart", "10m")
	cli, in, label := f.cli, f.in, f.label
	id := label + "-w"
	args := f.workerArgs(id)
	first := startProc(t, args...)
	waitFor(t, "the worker", func() bool { return len(in.workers()) == 1 })

	run := in.runDetachedFlags([]string{"--attempts", "1"},
		"sh", "-c", `echo "attempt $GANTRY_ATTEMPT"; if [ "$GANTRY_ATTEMPT" = 1 ]; then sleep 3600; fi`)
	in.waitLog(run, "attempt 1")
	first.kill()
	running := func() int {
		list, err := cli.ContainerList(context.Background(), container.ListOptions{
			Filters: filters.NewArgs(filters.Arg("label", sampletest.LabelKey+"="+label), filters.Arg("label", "gantry.run="+run))})
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	if running() != 1 {
		t.Fatal("the killed worker's container is not running")
	}

	restarted := time.Now()
	startProc(t, args...)
	waitFor(t, "attempt 2 to run", func() bool { return len(in.describe(run).Attempts) == 2 })
	t.Logf("attempt 2 recorded %s after the restart began", time.Since(restarted).Round(10*time.Millisecond))
	r := in.waitStatus(run, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled)
	if r.Status != jobs.StatusSucceeded || len(r.Attempts) != 2 {
		t.Fatalf("run: %s %q, %d attempts: %+v", r.Status, r.StoppedReason, len(r.Attempts), r.Attempts)
	}
	lost, next := r.Attempts[0], r.Attempts[1]
	if lost.StopCode != jobs.StopWorkerLost || lost.Worker != id || next.Worker != id || next.Status != jobs.StatusSucceeded {
		t.Fatalf("attempts: %+v", r.Attempts)
	}
	if logs, _, _ := in.gantry("logs", run, "--attempt", "2"); logs != "attempt 2\n" {
		t.Errorf("logs of attempt 2: %q", logs)
	}
	if n := running(); n != 0 {
		t.Errorf("%d containers of the run still running", n)
	}
}

// TestSlowSetupTakenOverDoesNotStart: a worker whose Docker daemon is slow
// to create the task's container (held back by a proxy) is frozen
// (SIGSTOP) past its lease; another worker takes the job over and runs it
// as attempt 2. Thawed, its create answered, the first worker finds the
// later attempt before it starts the container, and does not start it:
// attempt 1 printed nothing, the two never ran side by side, and its
// container is removed.
func TestSlowSetupTakenOverDoesNotStart(t *testing.T) {
	t.Parallel()
	f := startFleet(t, "e2e-takeover", "3s")
	cli, in, label, workerArgs := f.cli, f.in, f.label, f.workerArgs
	slow := sampletest.StartDaemonProxy(t, cli)
	held, release := slow.Hold("/containers/create")
	defer release()
	a := startProcEnv(t, []string{"DOCKER_HOST=unix://" + slow.Path()}, workerArgs(label+"-a")...)
	waitFor(t, "the first worker", func() bool { return len(in.workers()) == 1 })

	id := in.runDetached("sh", "-c", `echo "attempt $GANTRY_ATTEMPT"`)
	select {
	case <-held:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the first worker never created the container:\n%s", a.log)
	}
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			a.cmd.Process.Signal(syscall.SIGCONT)
			thawed = true
		}
	}
	defer thaw() // before the process's stop, which SIGTERM alone would not do
	startProc(t, workerArgs(label+"-b")...)
	r := in.waitStatus(id, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled)
	if r.Status != jobs.StatusSucceeded || len(r.Attempts) != 2 || r.Attempts[1].Worker != label+"-b" {
		t.Fatalf("run %s %q, attempts %+v: want attempt 2 SUCCEEDED on the second worker", r.Status, r.StoppedReason, r.Attempts)
	}

	thaw()
	release()
	tookOver := "a later attempt of the run took over while this one set up"
	waitFor(t, "the first worker to end its attempt", func() bool {
		l := a.log.String()
		return strings.Contains(l, tookOver) || strings.Contains(l, "attempt ended")
	})
	waitFor(t, "the first worker to remove its container", func() bool {
		list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", sampletest.LabelKey+"="+label), filters.Arg("label", "gantry.worker="+label+"-a"))})
		if err != nil {
			t.Fatal(err)
		}
		return len(list) == 0
	})
	if logs, _, _ := in.gantry("logs", id, "--attempt", "1"); logs != "" {
		t.Errorf("attempt 1 printed %q: its container started", logs)
	}
	if logs, _, _ := in.gantry("logs", id); logs != "attempt 2\n" {
		t.Errorf("the run's logs: %q, want attempt 2's line alone", logs)
	}
	if !strings.Contains(a.log.String(), tookOver) {
		t.Errorf("the first worker did not say it saw the takeover:\n%s", a.log)
	}
	if r := in.describe(id); r.Status != jobs.StatusSucceeded || len(r.Attempts) != 2 {
		t.Fatalf("after the first worker went on: %s with %d attempts", r.Status, len(r.Attempts))
	}
}
