package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/samples/sampletest"
)

// These tests drive gantry's NATS API with the real `nats` command-line
// client, as an outside program would: no gantry code on the client side.

// natsCLIVersion is the natscli release the tests install.
const natsCLIVersion = "v0.5.0"

var (
	natsOnce sync.Once
	natsBin  string
	natsErr  error
)

// natsCLI installs the nats CLI once per test process, next to the gantry
// binary under test. Without it the test fails under
// GANTRY_REQUIRE_DOCKER=1 (CI) and skips otherwise.
func natsCLI(t *testing.T) string {
	t.Helper()
	natsOnce.Do(func() {
		dir := filepath.Dir(gantryBin)
		// A first build on a machine with an empty module cache downloads
		// and compiles natscli and its own NATS server: minutes on 2 busy
		// cores (.ci/run builds it before the tests for that reason).
		ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "install", "github.com/nats-io/natscli/nats@"+natsCLIVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			natsErr = fmt.Errorf("go install natscli %s: %v\n%s", natsCLIVersion, err, out)
			return
		}
		natsBin = filepath.Join(dir, "nats")
	})
	if natsErr != nil {
		if os.Getenv("GANTRY_REQUIRE_DOCKER") == "1" {
			t.Fatal(natsErr)
		}
		t.Skipf("no nats CLI: %v", natsErr)
	}
	return natsBin
}

// natsUser runs the nats CLI against url as a user.
type natsUser struct {
	t              *testing.T
	bin, url       string
	user, password string
}

// with returns n reporting to t, for use in a subtest.
func (n natsUser) with(t *testing.T) natsUser { n.t = t; return n }

func (n natsUser) args(args []string) []string {
	base := []string{"--server", n.url, "--no-context"}
	if n.user != "" {
		base = append(base, "--user", n.user, "--password", n.password)
	}
	return append(base, args...)
}

// run runs `nats ARGS` to its end.
func (n natsUser) run(args ...string) (stdout, stderr string, code int) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.bin, n.args(args)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatalf("nats %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// req sends a request and returns the raw reply; it fails the test when
// nats does.
func (n natsUser) req(subject, body string) string {
	n.t.Helper()
	out, errOut, code := n.run("req", subject, body, "--raw", "--timeout", "10s")
	if code != 0 {
		n.t.Fatalf("nats req %s %s: exit %d: %s", subject, body, code, errOut)
	}
	return out
}

// sub starts `nats sub SUBJECT --raw` and returns its lines as they come.
// It returns once the subscription is in place.
func (n natsUser) sub(subject string, extra ...string) <-chan string {
	n.t.Helper()
	cmd := exec.Command(n.bin, n.args(append([]string{"sub", subject, "--raw"}, extra...))...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 10000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// With --raw, nats sub says nothing when it has subscribed: give the
	// SUB time to reach the server.
	go io.Copy(io.Discard, stderr)
	time.Sleep(time.Second)
	return lines
}

// await reads lines until one satisfies ok.
func await(t *testing.T, what string, lines <-chan string, ok func(string) bool) string {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case l, open := <-lines:
			if !open {
				t.Fatalf("%s: the subscription ended", what)
			}
			if ok(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("%s: nothing after 2m", what)
		}
	}
}

func inlineTaskJSON(image, script string) string {
	td, _ := json.Marshal(map[string]any{"family": "natscli", "containerDefinitions": []map[string]any{{
		"name": "main", "image": image, "command": []string{"sh", "-c", script}, "memory": 64}}})
	return string(td)
}

// TestNatsCLIDrivesTheAPI: with auth on, an operator sees the micro
// service and its schemas; a submit-only user submits by request/reply,
// follows the run's events and logs by subscribing, and is refused the
// rest.
func TestNatsCLIDrivesTheAPI(t *testing.T) {
	t.Parallel()
	bin := natsCLI(t)
	in := startUpEnv(t, []string{"GANTRY_NATS_USER=op", "GANTRY_NATS_PASSWORD=op-secret"},
		"--user", "op", "--password", "op-secret", "--submit-user", "app", "--submit-password", "app-secret")
	url := strings.TrimPrefix(lastEnv(in.env, "GANTRY_NATS_URL="), "GANTRY_NATS_URL=")
	op := natsUser{t: t, bin: bin, url: url, user: "op", password: "op-secret"}
	app := natsUser{t: t, bin: bin, url: url, user: "app", password: "app-secret"}

	t.Run("micro ls and info", func(t *testing.T) {
		op := op.with(t)
		out, errOut, code := op.run("micro", "ls")
		if code != 0 || !strings.Contains(out, "gantry") {
			t.Fatalf("micro ls: exit %d\n%s%s", code, out, errOut)
		}
		out, errOut, code = op.run("micro", "info", "gantry")
		if code != 0 {
			t.Fatalf("micro info: exit %d: %s", code, errOut)
		}
		for _, want := range []string{"gantry.api.runs.submit", "gantry.api.runs.list", "gantry.api.runs.logs",
			"gantry.api.taskdefs.register", "gantry.api.pipelines.run", "request_schema", "response_schema"} {
			if !strings.Contains(out, want) {
				t.Errorf("micro info lacks %q:\n%s", want, out)
			}
		}
		out, _, code = op.run("req", "$SRV.INFO.gantry", "", "--raw")
		if code != 0 || !strings.Contains(out, `\"runId\"`) {
			t.Errorf("$SRV.INFO.gantry has no runId in its schemas:\n%.500s", out)
		}
	})

	var runID string
	t.Run("submit by request, follow events and logs", func(t *testing.T) {
		op, app := op.with(t), app.with(t)
		events := app.sub("gantry.events.runs.>")
		logs := app.sub("gantry.logs.>")
		body := fmt.Sprintf(`{"taskDefinition":%s}`, inlineTaskJSON(in.image, "echo hello from nats; echo to stderr >&2"))
		reply := app.req("gantry.api.runs.submit", body)
		var r jobs.Run
		if err := json.Unmarshal([]byte(reply), &r); err != nil || r.RunID == "" || r.Status != jobs.StatusQueued {
			t.Fatalf("submit reply: %v\n%s", err, reply)
		}
		runID = r.RunID
		end := await(t, "the SUCCEEDED event", events, func(l string) bool {
			return strings.Contains(l, `"runId":"`+runID+`"`) && strings.Contains(l, `"status":"SUCCEEDED"`) &&
				strings.Contains(l, `"source":"server"`)
		})
		if !strings.HasPrefix(end, `{"v":1,`) {
			t.Errorf("event is not versioned: %s", end)
		}
		line := await(t, "the log line", logs, func(l string) bool { return strings.Contains(l, "hello from nats") })
		var b jobs.LogBatch
		if err := json.Unmarshal([]byte(line), &b); err != nil || b.RunID != runID || b.Container != "main" ||
			!strings.HasPrefix(line, `{"v":1,`) {
			t.Errorf("log batch: %v\n%s", err, line)
		}
		got := app.req("gantry.api.runs.status", fmt.Sprintf(`{"runId":%q}`, runID))
		if !strings.Contains(got, `"status":"SUCCEEDED"`) || strings.Contains(got, `"spec"`) {
			t.Errorf("runs.status: %s", got)
		}
		pos := op.req("gantry.api.runs.logs", fmt.Sprintf(`{"runId":%q}`, runID))
		if !strings.Contains(pos, `"stream":"GANTRY_LOGS"`) || !strings.Contains(pos, `"ended":true`) {
			t.Errorf("runs.logs: %s", pos)
		}
	})

	t.Run("errors", func(t *testing.T) {
		op := op.with(t)
		out, errOut, _ := op.run("req", "gantry.api.runs.get", `{"runId":"01jzzzzzzzzzzzzzzzzzzzzzzz"}`, "--timeout", "10s")
		out += errOut
		if !strings.Contains(out, `"code":"not_found"`) || !strings.Contains(out, "Nats-Service-Error-Code: 404") {
			t.Errorf("not found:\n%s", out)
		}
		out, errOut, _ = op.run("req", "gantry.api.runs.submit", `{"taskDefinition":`, "--timeout", "10s")
		out += errOut
		if !strings.Contains(out, `"code":"invalid_argument"`) || !strings.Contains(out, "Nats-Service-Error-Code: 400") {
			t.Errorf("malformed:\n%s", out)
		}
		// `nats micro stats` shows them in each endpoint's data.
		out, errOut, code := op.run("micro", "stats", "gantry", "--json")
		var stats []struct {
			Endpoints []struct {
				Name string `json:"name"`
				Data struct {
					Answered  int    `json:"num_answered"`
					Errors    int    `json:"num_errors"`
					LastError string `json:"last_error"`
				} `json:"data"`
			} `json:"endpoints"`
		}
		if err := json.Unmarshal([]byte(out), &stats); code != 0 || err != nil || len(stats) != 1 {
			t.Fatalf("micro stats: exit %d, %v: %s%s", code, err, out, errOut)
		}
		last := map[string]string{}
		for _, ep := range stats[0].Endpoints {
			if ep.Data.Errors > 0 && ep.Data.Answered >= ep.Data.Errors {
				last[ep.Name] = ep.Data.LastError
			}
		}
		if !strings.HasPrefix(last["runs_get"], "not_found: ") || !strings.HasPrefix(last["runs_submit"], "invalid_argument: ") {
			t.Errorf("micro stats: last errors %q, want runs_get's not_found and runs_submit's invalid_argument:\n%s", last, out)
		}
	})

	t.Run("the submit-only user is refused elsewhere", func(t *testing.T) {
		app := app.with(t)
		for _, subject := range []string{"gantry.api.runs.get", "gantry.api.runs.stop", "gantry.api.taskdefs.register", "gantry.api.runs.list",
			"gantry.api.workers.drain", "gantry.jobs.default", "$SRV.PING"} {
			// nats req reports the violation, then times out (its exit
			// code says nothing).
			out, errOut, code := app.run("req", subject, `{}`, "--timeout", "1s")
			if !strings.Contains(strings.ToLower(out+errOut), "permissions violation") {
				t.Errorf("%s as the submitter: exit %d\n%s%s", subject, code, out, errOut)
			}
		}
		// and the gantry CLI says so at once, as permission_denied
		_, errOut, code := runBin(t, append(in.env, "GANTRY_NATS_USER=app", "GANTRY_NATS_PASSWORD=app-secret"), "stop", runID)
		if code != exitGantryError || !strings.Contains(errOut, "refused") {
			t.Errorf("gantry stop as the submitter: exit %d: %s", code, errOut)
		}
		// It may run and follow a run with the gantry CLI.
		out, errOut, code := runBin(t, append(in.env, "GANTRY_NATS_USER=app", "GANTRY_NATS_PASSWORD=app-secret"),
			"run", "--image", in.image, "--", "sh", "-c", "echo attached as app")
		if code != 0 || out != "attached as app\n" {
			t.Errorf("gantry run as the submitter: exit %d, %q, %s", code, out, errOut)
		}
	})
}

func lastEnv(env []string, prefix string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if strings.HasPrefix(env[i], prefix) {
			return env[i]
		}
	}
	return ""
}

// TestNatsCLISubmitWhileServerDown publishes to gantry.submit with the
// nats CLI while no gantry server runs (NATS does), twice with the same
// Nats-Msg-Id; once the server and a worker start, one run runs and its id
// comes on the Gantry-Reply-To subject.
func TestNatsCLISubmitWhileServerDown(t *testing.T) {
	t.Parallel()
	bin := natsCLI(t)
	cli := sampletest.Docker(t)
	image := sampletest.Image(t)
	label := fmt.Sprintf("e2e-natsdown%d", time.Now().UnixNano()%100000)
	sampletest.Cleanup(t, cli, label)
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	url := ns.ClientURL()
	data := t.TempDir()
	env := append(os.Environ(), "GANTRY_NATS_URL="+url)
	in := &instance{t: t, env: env, image: image}
	nats := natsUser{t: t, bin: bin, url: url}

	// A first start creates the streams; then the server goes away.
	server := startProc(t, "server", "--nats", url, "--data", data)
	waitFor(t, "the server", func() bool { _, _, code := in.gantry("ps"); return code == 0 })
	server.stop()
	if _, _, code := in.gantry("ps"); code == 0 {
		t.Fatal("the API answers with the server stopped")
	}

	replies := nats.sub("orders.replies.>")
	body := fmt.Sprintf(`{"taskDefinition":%s}`, inlineTaskJSON(image, "echo durable"))
	for range 2 {
		out, errOut, code := nats.run("pub", "--jetstream", "gantry.submit", body,
			"-H", "Nats-Msg-Id:order-7", "-H", "Gantry-Reply-To:orders.replies.7")
		if code != 0 {
			t.Fatalf("nats pub --jetstream: exit %d: %s%s", code, out, errOut)
		}
	}

	startProc(t, "server", "--nats", url, "--data", data)
	startProc(t, "worker", "--nats", url, "--id", label, "--grace", "5s", "--container-label", sampletest.LabelKey+"="+label)
	reply := await(t, "the reply", replies, func(string) bool { return true })
	var r jobs.Run
	if err := json.Unmarshal([]byte(reply), &r); err != nil || r.RunID == "" || r.IdempotencyKey != "msgid:order-7" {
		t.Fatalf("reply: %v\n%s", err, reply)
	}
	done := in.waitStatus(r.RunID, jobs.StatusSucceeded, jobs.StatusFailed)
	if done.Status != jobs.StatusSucceeded {
		t.Fatalf("run %s", done.Status)
	}
	if logs, _, _ := in.gantry("logs", r.RunID); logs != "durable\n" {
		t.Errorf("logs %q", logs)
	}
	list := nats.req("gantry.api.runs.list", `{"all":true}`)
	var page struct {
		Runs []jobs.Run `json:"runs"`
	}
	if err := json.Unmarshal([]byte(list), &page); err != nil || len(page.Runs) != 1 {
		t.Fatalf("want one run of the two publishes: %v\n%s", err, list)
	}
}
