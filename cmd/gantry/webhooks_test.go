package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
)

// TestWebhookCommandsCheckTheirFlags: gantry webhook add, delete and test
// refuse bad input before connecting, naming each flag or argument.
func TestWebhookCommandsCheckTheirFlags(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"webhook", "add", "ops"}, []string{"--url: required"}},
		{[]string{"webhook", "add", "o ps", "--url", "ftp://x", "--on", "failed,RUNNING", "--tag", "team",
			"--family", "etl:3", "--pipeline", "a/b", "--secret-file", "/nonexistent/secret"},
			[]string{`NAME: "o ps"`, `--url: "ftp://x": scheme "ftp": want http or https`, `--on: "RUNNING": not an end status`,
				`--tag "team": want KEY=VALUE`, `families[0]: "etl:3"`, `pipelines[0]: "a/b"`, "--secret-file: open /nonexistent/secret"}},
		{[]string{"webhook", "add", "ops", "--url", "http:///x"}, []string{"--url", "no host"}},
		{[]string{"webhook", "add", "ops", "--url", "https://h/", "--kind", "stages"}, []string{`--kind: "stages": want runs or pipelineRuns`}},
		{[]string{"webhook", "add", "ops", "--url", "https://h/", "--kind", "pipelineRuns", "--family", "etl"},
			[]string{"families: no pipeline run has a family"}},
		{[]string{"webhook", "add", "ops", "--url", "https://h/", "--kind", "pipelines", "--no-array-children"},
			[]string{"--no-array-children: no pipeline run is an array run's child: with kind pipelineRuns the hook hears of no run"}},
		{[]string{"webhook", "add", "ops", "--url", "https://h/", "--secret-file", empty}, []string{"--secret-file " + empty + ": empty"}},
		{[]string{"webhook", "delete", "o/ps"}, []string{`NAME: "o/ps": a hook name`}},
		{[]string{"webhook", "test", ""}, []string{"NAME: empty"}},
	} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		// No NATS listens here: flags that passed would fail to connect.
		root.SetArgs(append(c.args, "--nats", "nats://127.0.0.1:1"))
		err := root.ExecuteContext(context.Background())
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("gantry %s: %v; want %q", strings.Join(c.args, " "), err, w)
			}
		}
	}
}

// TestWebhookTestedText: gantry webhook test says whether the answer
// delivered, and why not, and prints the body's start once.
func TestWebhookTestedText(t *testing.T) {
	const u = "http://127.0.0.1:9/h"
	for _, c := range []struct {
		name string
		in   client.WebhookTested
		want string
	}{
		{"delivered", client.WebhookTested{URL: u, Delivered: true, Status: 200, Body: "thanks\n"},
			"POST " + u + ": 200 (delivered)\nthanks\n"},
		{"refused", client.WebhookTested{URL: u, Status: 500, Body: "boom\n", Error: "HTTP 500 Internal Server Error: boom"},
			"POST " + u + ": 500 Internal Server Error (not delivered: only a 2xx answer delivers)\nboom\n"},
		{"redirect", client.WebhookTested{URL: u, Status: 302, Error: "HTTP 302 Found"},
			"POST " + u + ": 302 Found (not delivered: redirects are not followed)\n"},
		{"no answer", client.WebhookTested{URL: u, Error: "dial: connect: connection refused"},
			"POST " + u + ": dial: connect: connection refused\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := webhookTestedText(&b, &c.in); err != nil || b.String() != c.want {
				t.Errorf("got %q, %v; want %q", b.String(), err, c.want)
			}
		})
	}
}

// TestWebhookTestSaysItIsNotRecorded: gantry webhook test of a hook whose
// receiver refuses says why it did not deliver, exits 1 and notes on
// stderr that the test is not recorded, as webhook ls shows it: no LAST.
func TestWebhookTestSaysItIsNotRecorded(t *testing.T) {
	b := startBoundedLogs(t)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := b.c.AddWebhook(b.ctx, client.WebhookSpec{Name: "ops", URL: gone.URL})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not add a webhook within 10s: %v", err)
		}
	}
	run := func(args ...string) (stdout, stderr string, err error) {
		root := newRoot()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append(append([]string{"webhook"}, args...), "--nats", b.nc.ConnectedUrl()))
		err = root.ExecuteContext(b.ctx)
		return out.String(), errOut.String(), err
	}
	out, errOut, err := run("test", "ops")
	if ee := (*exitError)(nil); !errors.As(err, &ee) || ee.code != 1 {
		t.Errorf("webhook test of a refusing receiver: %v, want exit 1", err)
	}
	if !strings.HasPrefix(out, "POST "+gone.URL+": ") || errOut != webhookTestNotRecorded+"\n" {
		t.Errorf("webhook test: stdout %q, stderr %q; want the answer, and on stderr %q", out, errOut, webhookTestNotRecorded)
	}
	if out, _, err := run("ls", "-o", "json"); err != nil || strings.Contains(out, `"last"`) {
		t.Errorf("webhook ls -o json after a test: %v\n%s\nwant no last try", err, out)
	}
	out, _, err = run("ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if f := strings.Fields(lines[len(lines)-1]); err != nil || len(lines) != 2 || len(f) != 7 || fmt.Sprint(f[3:]) != "[- - 0 0]" {
		t.Errorf("webhook ls after a test: %v\n%s\nwant FILTERS and LAST -, PENDING and FAILED 0", err, out)
	}
}

// TestWebhookAddNoArrayChildren: gantry webhook add --no-array-children
// stores the hook with arrayChildren false, which webhook ls shows among
// its filters and -o json as the field; a hook without it shows neither.
func TestWebhookAddNoArrayChildren(t *testing.T) {
	b := startBoundedLogs(t)
	run := func(args ...string) string {
		t.Helper()
		root := newRoot()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append(append([]string{"webhook"}, args...), "--nats", b.nc.ConnectedUrl()))
		if err := root.ExecuteContext(b.ctx); err != nil {
			t.Fatalf("gantry webhook %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		// The server may not answer yet: the first add is retried.
		if _, err := b.c.Webhooks(b.ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not answer within 10s")
		}
	}
	if out := run("add", "oncall", "--url", "https://hooks.example.com/oncall", "--no-array-children", "--kind", "runs"); !strings.Contains(out, "kind=runs no-array-children") {
		t.Errorf("webhook add printed:\n%s\nwant FILTERS kind=runs no-array-children", out)
	}
	run("add", "all", "--url", "https://hooks.example.com/all")
	lines := strings.Split(strings.TrimSpace(run("ls")), "\n")
	if len(lines) != 3 || fmt.Sprint(strings.Fields(lines[1])[:4]) != "[all https://hooks.example.com/all FAILED -]" ||
		fmt.Sprint(strings.Fields(lines[2])[:5]) != "[oncall https://hooks.example.com/oncall FAILED kind=runs no-array-children]" {
		t.Errorf("webhook ls:\n%s\nwant oncall's FILTERS kind=runs no-array-children, all's -", strings.Join(lines, "\n"))
	}
	out := run("ls", "-o", "json")
	if strings.Count(out, `"arrayChildren"`) != 1 || !strings.Contains(out, `"arrayChildren": false`) {
		t.Errorf("webhook ls -o json:\n%s\nwant \"arrayChildren\": false once, oncall's", out)
	}
}
