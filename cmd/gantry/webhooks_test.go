package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
