package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

const reloadPipeline = `
name: reload
parameters: {customer: {required: true}, day: x}
stages:
  - name: only
    taskDefinition: {family: reload-only, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo reloading customer ${customer}']}]}
`

// TestPipelineRunRequiredParamAndIdempotencyKey: gantry pipeline run of a
// pipeline with a required parameter not given is refused (exit 125),
// naming it and the flag that gives it; describe shows it required.
// Given, the run goes; runs of the CLI racing with one --idempotency-key
// print one pipeline run id, and so does one after it ended, attached
// (exiting 0 as the run succeeded).
func TestPipelineRunRequiredParamAndIdempotencyKey(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.applyPipeline("reload", reloadPipeline)

	out, errOut, code := in.gantry("pipeline", "run", "reload", "-d")
	if want := "pipeline reload needs parameter customer: give --param customer=VALUE"; code != exitGantryError || !strings.Contains(errOut, want) {
		t.Fatalf("run without customer: exit %d, stdout %q, stderr %q; want %d and %q", code, out, errOut, exitGantryError, want)
	}
	if out, _, _ := in.gantry("pipeline", "runs", "reload", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("a refused run was stored: %s", out)
	}
	if out, errOut, code := in.gantry("pipeline", "describe", "reload"); code != 0 || !strings.Contains(out, "customer (required") || !strings.Contains(out, "day=x") {
		t.Errorf("describe: exit %d: %s%s", code, out, errOut)
	}

	// The same key, four at once: one run, one id printed by all.
	const n = 4
	ids := make([]string, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, gantryBin, "pipeline", "run", "reload", "--param", "customer=42",
				"--idempotency-key", "reload-42-2026-03-01", "-d")
			cmd.Env = in.env
			var o, e bytes.Buffer
			cmd.Stdout, cmd.Stderr = &o, &e
			if err := cmd.Run(); err != nil {
				errs[i] = err.Error() + ": " + e.String()
			}
			ids[i] = strings.TrimSpace(o.String())
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != "" || !jobs.IsPipelineRunID(ids[i]) || ids[i] != ids[0] {
			t.Fatalf("run %d: %q (%s); run 0: %q", i, ids[i], errs[i], ids[0])
		}
	}
	pr := in.waitPipeline(ids[0], ended)
	if pr.Status != jobs.StatusSucceeded || pr.Parameters["customer"] != "42" {
		t.Fatalf("pipeline run %s %v", pr.Status, pr.Parameters)
	}
	out, _, _ = in.gantry("pipeline", "runs", "reload", "-o", "json")
	var runs []jobs.PipelineRun
	if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 1 {
		t.Fatalf("runs of reload: %d (%v), want 1\n%s", len(runs), err, out)
	}

	// Again once it ended, attached: the same run, its end, exit 0.
	out, errOut, code = in.gantry("pipeline", "run", "reload", "--param", "customer=43", "--idempotency-key", "reload-42-2026-03-01")
	if code != 0 || !strings.Contains(out+errOut, ids[0]) {
		t.Fatalf("attached retry: exit %d, want 0 naming %s\n%s\n%s", code, ids[0], out, errOut)
	}
	if out, _, _ := in.gantry("pipeline", "runs", "reload", "-o", "json"); strings.Count(out, `"pipelineRunId"`) != 1 {
		t.Fatalf("the attached retry started a run:\n%s", out)
	}
	// Another key starts another run.
	out, errOut, code = in.gantry("pipeline", "run", "reload", "--param", "customer=43", "--idempotency-key", "reload-43", "-d")
	if id := strings.TrimSpace(out); code != 0 || id == ids[0] || !jobs.IsPipelineRunID(id) {
		t.Fatalf("another key: exit %d %q %s", code, out, errOut)
	}
	in.waitPipeline(strings.TrimSpace(out), ended)
}
