package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/natstest"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// TestSubmitterSeesNoJobs: a submit-only user may subscribe to _INBOX.>,
// for the replies to its own requests. gantry's long-running roles (here
// gantry up's worker and server) receive on inboxes of their own prefix,
// so the jobs a worker fetches (a task's command and environment, with its
// secrets) and the submissions and reports the server takes do not reach
// the submitter.
func TestSubmitterSeesNoJobs(t *testing.T) {
	t.Parallel()
	in := startUpEnv(t, []string{"GANTRY_NATS_USER=op", "GANTRY_NATS_PASSWORD=op-secret"},
		"--user", "op", "--password", "op-secret", "--submit-user", "app", "--submit-password", "app-secret")
	url := strings.TrimPrefix(lastEnv(in.env, "GANTRY_NATS_URL="), "GANTRY_NATS_URL=")
	const secret = "s3cr3t-f0r-the-0perat0r"

	app, err := nats.Connect(url, nats.UserInfo("app", "app-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var mu sync.Mutex
	var seen []string
	if _, err := app.Subscribe("_INBOX.>", func(m *nats.Msg) {
		if bytes.Contains(m.Data, []byte(secret)) {
			mu.Lock()
			seen = append(seen, m.Subject)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := app.Flush(); err != nil {
		t.Fatal(err)
	}

	// The operator's own requests go to a prefix of the test's, so that
	// only gantry's roles are watched.
	op, err := nats.Connect(url, nats.UserInfo("op", "op-secret"), nats.CustomInboxPrefix("_TEST_INBOX"))
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	body := fmt.Sprintf(`{"taskDefinition":%s}`, inlineTaskJSON(in.image, "true "+secret))
	m, err := op.Request("gantry.api.runs.submit", []byte(body), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r jobs.Run
	if err := json.Unmarshal(m.Data, &r); err != nil || r.RunID == "" {
		t.Fatalf("submit: %v %s", err, m.Data)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		m, err := op.Request("gantry.api.runs.get", fmt.Appendf(nil, `{"runId":%q}`, r.RunID), 5*time.Second)
		if err == nil && json.Unmarshal(m.Data, &r) == nil && r.Status.Terminal() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not ended within 2 minutes: %s", r.RunID, r.Status)
		}
	}
	if r.Status != jobs.StatusSucceeded {
		t.Fatalf("run %s: %s %s", r.RunID, r.Status, r.StoppedReason)
	}
	app.Flush()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > 0 {
		t.Fatalf("the submitter's _INBOX.> subscription received the operator's task %d times, on %v", len(seen), seen)
	}
}

// snooper is a connection subscribed to every inbox under a prefix, as a
// user who may subscribe there can be.
type snooper struct {
	t   *testing.T
	nc  *nats.Conn
	msg chan *nats.Msg
}

func snoop(t *testing.T, url, user, password, subject string) *snooper {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s := &snooper{t: t, nc: nc, msg: make(chan *nats.Msg, 10000)}
	if _, err := nc.ChanSubscribe(subject, s.msg); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return s
}

// saw returns the subjects of the messages holding secret received so far.
// The server queues a message to every subscriber as it routes it, so a
// reply its requester received is ahead of the PONG that ends the flush;
// nats.go puts a channel subscription's messages in its channel as it
// reads them.
func (s *snooper) saw(secret string) []string {
	s.t.Helper()
	if err := s.nc.Flush(); err != nil {
		s.t.Fatal(err)
	}
	var subjects []string
	for {
		select {
		case m := <-s.msg:
			if bytes.Contains(m.Data, []byte(secret)) {
				subjects = append(subjects, m.Subject)
			}
		default:
			return subjects
		}
	}
}

// checkCLIInboxes: the operator's CLI replies (here a task definition's
// environment) reach neither a user who may subscribe to _INBOX.> (the
// submit role) nor one who may subscribe to _GANTRY_INBOX.> (as a worker
// user narrowed to its role may); other clients' replies under _INBOX do.
// And a submit-only user, whose permissions name _INBOX.> only, still
// submits and follows runs with the CLI.
func checkCLIInboxes(t *testing.T, url string, op, app []string, opUser, opPass, appUser, appPass string) {
	t.Helper()
	const secret = "DB-PASSW0RD-of-the-0perat0r"
	asApp := snoop(t, url, appUser, appPass, "_INBOX.>")
	asWorker := snoop(t, url, opUser, opPass, "_GANTRY_INBOX.>")

	file := filepath.Join(t.TempDir(), "td.json")
	td := `{"family":"with-secret","containerDefinitions":[{"name":"main","image":"gantry/none:1",` +
		`"environment":[{"name":"DB_PASSWORD","value":"` + secret + `"}]}]}`
	if err := os.WriteFile(file, []byte(td), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runBin(t, op, "taskdef", "register", file); code != 0 {
		t.Fatalf("taskdef register: exit %d: %s", code, errOut)
	}
	out, errOut, code := runBin(t, op, "taskdef", "describe", "with-secret", "-o", "json")
	if code != 0 || !strings.Contains(out, secret) {
		t.Fatalf("taskdef describe: exit %d: %s%s", code, out, errOut)
	}
	if seen := asApp.saw(secret); len(seen) > 0 {
		t.Errorf("a submitter subscribed to _INBOX.> read the operator's taskdef describe, on %v", seen)
	}
	if seen := asWorker.saw(secret); len(seen) > 0 {
		t.Errorf("a user subscribed to _GANTRY_INBOX.> read the operator's taskdef describe, on %v", seen)
	}

	// What the docs say is still seen: a client on the default prefix.
	plain, err := nats.Connect(url, nats.UserInfo(opUser, opPass))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Request("gantry.api.taskdefs.describe", []byte(`{"taskDefinition":"with-secret"}`), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if seen := asApp.saw(secret); len(seen) != 1 || !strings.HasPrefix(seen[0], "_INBOX.") {
		t.Errorf("the submitter's _INBOX.> saw the reply to a client on _INBOX on %v, want once", seen)
	}

	// The submitter's CLI, on _INBOX.
	out, errOut, code = runBin(t, app, "run", "-d", "--image", "gantry/none:1", "--", "true")
	id := strings.TrimSpace(out)
	if code != 0 || id == "" || errOut != "" {
		t.Fatalf("run -d as the submitter: exit %d: %q %q", code, out, errOut)
	}
	if out, errOut, code := runBin(t, app, "describe", id, "-o", "json"); code != 0 || !strings.Contains(out, id) || errOut != "" {
		t.Fatalf("describe as the submitter: exit %d: %s%s", code, out, errOut)
	}
	// The submitter reads runs by runs.status: an operator's run without
	// its spec (the task definition's environment). NATS refuses it
	// runs.get; its CLI says nothing of that.
	out, errOut, code = runBin(t, op, "run", "-d", "with-secret")
	opRun := strings.TrimSpace(out)
	if code != 0 || opRun == "" {
		t.Fatalf("run -d as the operator: exit %d: %s", code, errOut)
	}
	if out, errOut, code := runBin(t, op, "describe", opRun, "-o", "json"); code != 0 || !strings.Contains(out, secret) {
		t.Fatalf("describe as the operator: exit %d, want the spec with its environment: %s%s", code, out, errOut)
	}
	for _, format := range []string{"json", "yaml", "table"} {
		out, errOut, code := runBin(t, app, "describe", opRun, "-o", format)
		if code != 0 || errOut != "" || !strings.Contains(out, opRun) || !strings.Contains(out, "with-secret:1") {
			t.Errorf("describe -o %s of the operator's run as the submitter: exit %d: %q %q", format, code, out, errOut)
		}
		if strings.Contains(out, secret) || strings.Contains(out, "spec") {
			t.Errorf("describe -o %s of the operator's run as the submitter shows its spec:\n%s", format, out)
		}
	}
	if seen := asApp.saw(secret); len(seen) > 0 {
		t.Errorf("a submitter subscribed to _INBOX.> read the operator's run, on %v", seen)
	}
	// Ended, so that the run followed below is the only one left queued.
	if _, errOut, code := runBin(t, op, "stop", opRun); code != 0 {
		t.Fatalf("stop as the operator: exit %d: %s", code, errOut)
	}
	// Attached, it follows the run (its logs and events by direct get)
	// until the operator stops it: no worker runs it.
	attached := exec.Command(gantryBin, "run", "--image", "gantry/none:1", "--", "true")
	attached.Env = app
	var stdout, stderr syncBuffer
	attached.Stdout, attached.Stderr = &stdout, &stderr
	if err := attached.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- attached.Wait() }()
	t.Cleanup(func() {
		if attached.ProcessState == nil {
			attached.Process.Kill()
			<-done
		}
	})
	var followed string
	waitFor(t, "the attached run", func() bool {
		out, _, _ := runBin(t, op, "ps", "-o", "json")
		var runs []jobs.Run
		json.Unmarshal([]byte(out), &runs)
		for _, r := range runs {
			if r.RunID != id {
				followed = r.RunID
			}
		}
		return followed != ""
	})
	if _, errOut, code := runBin(t, op, "stop", followed); code != 0 {
		t.Fatalf("stop as the operator: exit %d: %s", code, errOut)
	}
	var ee *exec.ExitError
	if err := <-done; !errors.As(err, &ee) || ee.ExitCode() != exitGantryError ||
		!strings.Contains(stderr.String(), "run "+followed+" CANCELED") {
		t.Errorf("the submitter's attached run: %v: %s%s", err, stdout.String(), stderr.String())
	}
}

// TestCLIInboxEmbeddedRoles: checkCLIInboxes against the roles of the
// embedded NATS server (gantry server --embedded-nats). The submitter's
// CLI checks its inbox prefix at each command and is refused; the NATS
// server's log shows that at debug level only, while a submitter prying on
// _GANTRY_CLI.> is logged as the error it is.
func TestCLIInboxEmbeddedRoles(t *testing.T) {
	t.Parallel()
	server, url := startEmbeddedServer(t, t.TempDir(),
		"--user", "op", "--password", "op-secret", "--submit-user", "app", "--submit-password", "app-secret")
	op := append(os.Environ(), "GANTRY_NATS_URL="+url, "GANTRY_NATS_USER=op", "GANTRY_NATS_PASSWORD=op-secret")
	app := append(os.Environ(), "GANTRY_NATS_URL="+url, "GANTRY_NATS_USER=app", "GANTRY_NATS_PASSWORD=app-secret")
	waitFor(t, "the server", func() bool { _, _, code := runBin(t, op, "ps"); return code == 0 })
	checkCLIInboxes(t, url, op, app, "op", "op-secret", "app", "app-secret")

	// A command NATS refuses the submitter says so in one line, without
	// nats.go's raw report of the violation before it.
	const refused = "gantry: NATS refused gantry.api.taskdefs.list: permission denied to your user (a submit-only user?)\n"
	if _, errOut, code := runBin(t, app, "taskdef", "ls"); code != exitGantryError || errOut != refused {
		t.Errorf("taskdef ls as the submitter: exit %d, stderr %q, want %q", code, errOut, refused)
	}

	pry, err := nats.Connect(url, nats.UserInfo("app", "app-secret"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer pry.Close()
	if _, err := pry.SubscribeSync("_GANTRY_CLI.>"); err != nil {
		t.Fatal(err)
	}
	pry.Flush()
	// The log is written in order: once the pry is there, so would be
	// the checks' refusals at error level.
	waitFor(t, "the pry in the server's log", func() bool { return strings.Contains(server.log.String(), `"_GANTRY_CLI.>"`) })
	var violations []string
	for line := range strings.Lines(server.log.String()) {
		if strings.Contains(line, "Subscription Violation") {
			violations = append(violations, line)
		}
	}
	if len(violations) != 1 || !strings.Contains(violations[0], `"_GANTRY_CLI.>"`) {
		t.Errorf("the server logged the subscription violations %q, want the pry only", violations)
	}
	// Nor does it log the refusals of runs.get that the submitter's CLI
	// expects (client.Get then asks runs.status), but at debug level.
	for line := range strings.Lines(server.log.String()) {
		if strings.Contains(line, "Publish Violation") && strings.Contains(line, "gantry.api.runs.get") {
			t.Errorf("the server logged the submitter's CLI refused runs.get: %s", line)
		}
	}
}

// TestCLIInboxDocsConfig: checkCLIInboxes against a NATS server of the
// configuration docs/nats-api.md gives for the two roles, which allows the
// submitter _INBOX.> only.
func TestCLIInboxDocsConfig(t *testing.T) {
	t.Parallel()
	url, op, app := docsConfigServer(t, func(conf string) string { return conf })
	checkCLIInboxes(t, url, op, app, "ops", "ops-secret", "app", "app-secret")
}

// docsConfigServer starts a NATS server of the configuration
// docs/nats-api.md gives for the two roles, passed through edit, with the
// passwords ops-secret and app-secret, and a gantry server on it; it
// returns its URL and the environments of the CLI as ops and as app.
func docsConfigServer(t *testing.T, edit func(conf string) string) (url string, op, app []string) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/nats-api.md")
	if err != nil {
		t.Fatal(err)
	}
	_, conf, ok := strings.Cut(string(doc), "A nats-server configuration with the same roles:\n\n```\n")
	conf, _, ok2 := strings.Cut(conf, "```")
	if !ok || !ok2 || strings.Count(conf, `password: "..."`) != 2 {
		t.Fatalf("no sample configuration with two users in docs/nats-api.md's Authorization section")
	}
	conf = strings.Replace(conf, `password: "..."`, `password: "ops-secret"`, 1)
	conf = strings.Replace(conf, `password: "..."`, `password: "app-secret"`, 1)
	file := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(file, []byte(edit(conf)), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := natsserver.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("docs/nats-api.md's configuration: %v", err)
	}
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", natsserver.RANDOM_PORT, true, true
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	url = natstest.Start(t, opts).ClientURL()
	op = append(os.Environ(), "GANTRY_NATS_URL="+url, "GANTRY_NATS_USER=ops", "GANTRY_NATS_PASSWORD=ops-secret")
	app = append(os.Environ(), "GANTRY_NATS_URL="+url, "GANTRY_NATS_USER=app", "GANTRY_NATS_PASSWORD=app-secret")
	startProc(t, "server", "--data", t.TempDir(), "--nats", url, "--user", "ops", "--password", "ops-secret")
	waitFor(t, "the server", func() bool { _, _, code := runBin(t, op, "ps"); return code == 0 })
	return url, op, app
}

// TestSubmitterCLIFollowsItsRun: a submit-only user, refused the CLI's
// own inbox prefix, runs a task attached with the CLI and reads its logs:
// its replies come on _INBOX, and its follow reads the streams by direct
// get.
func TestSubmitterCLIFollowsItsRun(t *testing.T) {
	t.Parallel()
	in := startUpEnv(t, []string{"GANTRY_NATS_USER=op", "GANTRY_NATS_PASSWORD=op-secret"},
		"--user", "op", "--password", "op-secret", "--submit-user", "app", "--submit-password", "app-secret")
	app := append(in.env, "GANTRY_NATS_USER=app", "GANTRY_NATS_PASSWORD=app-secret")
	out, errOut, code := runBin(t, app, "run", "--image", in.image, "--", "sh", "-c", "echo attached as app")
	if code != 0 || out != "attached as app\n" || errOut != "" {
		t.Fatalf("gantry run as the submitter: exit %d, %q, %q", code, out, errOut)
	}
	list, _, _ := in.gantry("ps", "--all", "-o", "json")
	var runs []jobs.Run
	if err := json.Unmarshal([]byte(list), &runs); err != nil || len(runs) != 1 {
		t.Fatalf("ps: %v %s", err, list)
	}
	if out, errOut, code := runBin(t, app, "logs", runs[0].RunID); code != 0 || out != "attached as app\n" || errOut != "" {
		t.Errorf("gantry logs as the submitter: exit %d, %q, %q", code, out, errOut)
	}
	// Without the spec, a mistyped container is still named as such, from
	// the run's containers.
	if _, errOut, code := runBin(t, app, "logs", runs[0].RunID, "--container", "mian"); code != exitGantryError ||
		!strings.Contains(errOut, `has no container "mian"; its containers: main`) {
		t.Errorf("gantry logs --container mian as the submitter: exit %d, stderr %q", code, errOut)
	}
	// Its run as it reads it: by runs.status, without the spec.
	out, errOut, code = runBin(t, app, "describe", runs[0].RunID, "-o", "json")
	var r jobs.Run
	if err := json.Unmarshal([]byte(out), &r); code != 0 || errOut != "" || err != nil ||
		r.Status != jobs.StatusSucceeded || len(r.Containers) != 1 || strings.Contains(out, `"spec"`) {
		t.Errorf("gantry describe as the submitter: exit %d, %v: %s%s", code, err, out, errOut)
	}
	out, errOut, code = runBin(t, app, "run", "-d", "--image", in.image, "--", "true")
	if id := strings.TrimSpace(out); code != 0 || id == "" || errOut != "" {
		t.Errorf("gantry run -d as the submitter: exit %d, %q, %q", code, out, errOut)
	} else {
		in.waitStatus(id, jobs.StatusSucceeded) // not left running when the test ends
	}
}

// TestCLIOwnInboxPrefix: an application user allowed replies under a
// prefix of its own only (docs/nats-api.md's advice for applications that
// must not read each other's replies) uses the CLI with --inbox-prefix or
// GANTRY_NATS_INBOX_PREFIX; without it, the CLI says what to do instead of
// timing out as if no server answered; a prefix that is no prefix is
// refused before connecting.
func TestCLIOwnInboxPrefix(t *testing.T) {
	t.Parallel()
	_, _, app := docsConfigServer(t, func(conf string) string {
		if strings.Count(conf, `"_INBOX.>"`) != 1 {
			t.Fatalf("docs/nats-api.md's configuration does not allow the submitter _INBOX.> once")
		}
		return strings.Replace(conf, `"_INBOX.>"`, `"_INBOX_APP1.>"`, 1)
	})

	submit := []string{"run", "-d", "--image", "gantry/none:1", "--", "true"}
	_, errOut, code := runBin(t, app, submit...)
	if want := "refuses your user the replies under _GANTRY_CLI and _INBOX: if its permissions allow another prefix (subscribe PREFIX.>), give it with --inbox-prefix PREFIX"; code != exitGantryError || !strings.Contains(errOut, want) {
		t.Errorf("without --inbox-prefix: exit %d, stderr %q, want %q", code, errOut, want)
	}
	out, errOut, code := runBin(t, app, append([]string{"--inbox-prefix", "_INBOX_APP1"}, submit...)...)
	id := strings.TrimSpace(out)
	if code != 0 || id == "" || errOut != "" {
		t.Fatalf("with --inbox-prefix: exit %d, %q, stderr %q", code, out, errOut)
	}
	withEnv := append(app, "GANTRY_NATS_INBOX_PREFIX=_INBOX_APP1")
	if out, errOut, code := runBin(t, withEnv, "describe", id, "-o", "json"); code != 0 || errOut != "" || !strings.Contains(out, `"runId": "`+id+`"`) {
		t.Errorf("describe with GANTRY_NATS_INBOX_PREFIX: exit %d, %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := runBin(t, app, "--inbox-prefix", "_INBOX_APP2", "describe", id); code != exitGantryError ||
		!strings.Contains(errOut, "replies under _INBOX_APP2 (--inbox-prefix): its permissions must allow subscribing to _INBOX_APP2.>") {
		t.Errorf("a prefix the user may not use: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := runBin(t, app, "--inbox-prefix", "_INBOX_APP1.>", "describe", id); code != exitGantryError ||
		!strings.Contains(errOut, `--inbox-prefix: "_INBOX_APP1.>" has a wildcard`) {
		t.Errorf("a prefix with a wildcard: exit %d, stderr %q", code, errOut)
	}
}
