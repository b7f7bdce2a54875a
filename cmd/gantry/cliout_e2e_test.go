package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	"go.yaml.in/yaml/v3"
)

// TestDetachAndStopTakeOutput: `gantry run -d` and `gantry stop` take -o
// like every listing; the table form of run -d stays the bare id.
func TestDetachAndStopTakeOutput(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	out := in.mustGantry("run", "-d", "-o", "json", "--image", in.image, "--", "sh", "-c", "echo ready; sleep 300")
	var r jobs.Run
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.RunID) != 26 || r.Status != jobs.StatusQueued || r.TaskDefinition == "" {
		t.Fatalf("run -d -o json: %v\n%s", err, out)
	}
	in.waitLog(r.RunID, "ready")
	out = in.mustGantry("stop", r.RunID, "-o", "json")
	var stopped []jobs.Run
	if err := json.Unmarshal([]byte(out), &stopped); err != nil || len(stopped) != 1 || stopped[0].RunID != r.RunID {
		t.Fatalf("stop -o json: %v\n%s", err, out)
	}
	in.waitStatus(r.RunID, jobs.StatusCanceled)

	out = in.mustGantry("run", "-d", "-o", "yaml", "--image", in.image, "--", "true")
	var y map[string]any
	if err := yaml.Unmarshal([]byte(out), &y); err != nil || len(y["runId"].(string)) != 26 {
		t.Fatalf("run -d -o yaml: %v\n%s", err, out)
	}
	id := y["runId"].(string)
	in.waitStatus(id, jobs.StatusSucceeded)
	// gantry wait: a run ended and one running; it exits with the code of
	// the one that failed.
	failing := in.runDetached("sh", "-c", "sleep 1; exit 3")
	if out, errOut, code := in.gantry("wait", id, failing); code != 3 || out != id+"\tSUCCEEDED\t0\n"+failing+"\tFAILED\t3\n" {
		t.Errorf("wait of a run succeeded and one failing with 3: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out := in.mustGantry("stop", id); strings.Fields(out)[0] != id {
		t.Errorf("stop (table) = %q", out)
	}
	if out := in.mustGantry("stop", id, "-o", "yaml"); !strings.Contains(out, "runId: "+id) || !strings.HasPrefix(out, "- ") {
		t.Errorf("stop -o yaml:\n%s", out)
	}
	if _, errOut, code := in.gantry("run", "-o", "json", "--image", in.image, "--", "true"); code != exitGantryError ||
		!strings.Contains(errOut, "-o json needs -d") {
		t.Errorf("attached run -o json: exit %d: %s", code, errOut)
	}

	in.applyPipeline("one-stage", `
name: one-stage
stages:
  - name: only
    taskDefinition: {family: only, containerDefinitions: [{name: main, image: gantry/samples:latest, command: ['true']}]}
`)
	out = in.mustGantry("pipeline", "run", "-d", "-o", "json", "one-stage")
	var pr jobs.PipelineRun
	if err := json.Unmarshal([]byte(out), &pr); err != nil || !jobs.IsPipelineRunID(pr.PipelineRunID) {
		t.Fatalf("pipeline run -d -o json: %v\n%s", err, out)
	}
	out, errOut, code := in.gantry("wait", "-o", "json", pr.PipelineRunID)
	var waited jobs.PipelineRun
	if err := json.Unmarshal([]byte(out), &waited); err != nil || code != 0 || waited.PipelineRunID != pr.PipelineRunID ||
		waited.Status != jobs.StatusSucceeded {
		t.Errorf("wait -o json of a pipeline run: exit %d, %v, stderr %q:\n%s", code, err, errOut, out)
	}
	in.waitPipeline(pr.PipelineRunID, ended)
	if out := in.mustGantry("pipeline", "run", "-d", "one-stage"); !jobs.IsPipelineRunID(strings.TrimSpace(out)) {
		t.Errorf("pipeline run -d = %q, want only the id", out)
	}
}

// TestShellCompletion: the completion script prints, and completing the
// argument of describe asks the server for run ids.
func TestShellCompletion(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	id := in.runDetached("true")
	out, _, code := in.gantry("__complete", "describe", "")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, ":4") { // :4 = ShellCompDirectiveNoFileComp
		t.Fatalf("__complete describe '': exit %d\n%s", code, out)
	}
	if out, _, _ := in.gantry("__complete", "describe", id[:20]); !strings.Contains(out, id) {
		t.Errorf("__complete of a prefix:\n%s", out)
	}
	if out, _, _ := in.gantry("__complete", "wait", id[:20]); !strings.Contains(out, id) {
		t.Errorf("__complete wait of a prefix:\n%s", out)
	}
	if out, _, _ := in.gantry("__complete", "ps", "-o", ""); !strings.Contains(out, "json") || !strings.Contains(out, "yaml") {
		t.Errorf("__complete ps -o '':\n%s", out)
	}
	if _, errOut, code := in.gantry("pool", "set", "warehouse", "--slots", "1"); code != 0 {
		t.Fatalf("pool set: exit %d %s", code, errOut)
	}
	for _, args := range [][]string{{"run", "--pool", ""}, {"pool", "delete", "ware"}} {
		if out, _, _ := in.gantry(append([]string{"__complete"}, args...)...); !strings.Contains(out, "warehouse") {
			t.Errorf("__complete %v:\n%s", args, out)
		}
	}
	for _, args := range [][]string{{"run", "--depends-on", id[:20]}, {"events", "--run", ""}} {
		if out, _, _ := in.gantry(append([]string{"__complete"}, args...)...); !strings.Contains(out, id) {
			t.Errorf("__complete %v:\n%s", args, out)
		}
	}
	if out, _, _ := in.gantry("__complete", "events", "--kind", ""); !strings.Contains(out, "pipelines") {
		t.Errorf("__complete events --kind '':\n%s", out)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, errOut, code := runBin(t, os.Environ(), "completion", shell)
		if code != 0 || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d %s\n%.300s", shell, code, errOut, out)
		}
	}
	if out, _, _ := runBin(t, os.Environ(), "completion", "bash"); !strings.Contains(out, "complete -o default -F __start_gantry gantry") &&
		!strings.Contains(out, "__start_gantry") {
		t.Errorf("bash script does not register gantry:\n%.500s", out)
	}
}

// TestAttachedRunSaysWhyItIsQueued: attached to a run that no worker can
// take, or that waits for its retry, gantry run printed nothing; it says on
// stderr why the run waits, once per reason.
func TestAttachedRunSaysWhyItIsQueued(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	_, errOut, code := in.gantry("run", "--image", in.image, "--cluster", "nowhere", "--deadline", "3s", "--", "true")
	if code != exitTimeout || !strings.Contains(errOut, " is queued: no live worker in cluster nowhere (live workers are in cluster default)\n") {
		t.Errorf("a run no worker takes: exit %d, stderr:\n%s", code, errOut)
	}
	out, errOut, code := in.gantry("run", "--image", in.image, "--attempts", "2", "--", "sh", "-c", "echo try $GANTRY_ATTEMPT; exit 1")
	if code != 1 || out != "try 1\ntry 2\n" || strings.Count(errOut, " is queued: retry 1 of 1 after attempt 1 failed") != 1 {
		t.Errorf("a run retried: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
}

// TestFollowedLogsSayWhyTheRunIsQueued: gantry logs -f of a run that no
// worker can take said nothing until the run ended; it says why the run
// waits, as gantry run attached does, and tells nothing of the waits of a
// run that has since started.
func TestFollowedLogsSayWhyTheRunIsQueued(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	id := strings.TrimSpace(in.mustGantry("run", "-d", "--image", in.image, "--cluster", "nowhere", "--deadline", "4s", "--", "true"))
	waitFor(t, "the run to say why it waits", func() bool { return in.describe(id).StatusReason != "" })
	_, errOut, _ := in.gantry("logs", "-f", id)
	if want := "gantry: run " + id + " is queued: no live worker in cluster nowhere (live workers are in cluster default)\n"; !strings.Contains(errOut, want) {
		t.Errorf("logs -f of a queued run: stderr %q, want %q", errOut, want)
	}
	retried := strings.TrimSpace(in.mustGantry("run", "-d", "--image", in.image, "--attempts", "2", "--", "sh", "-c", "echo try $GANTRY_ATTEMPT; exit 1"))
	if r := in.waitStatus(retried, jobs.StatusFailed, jobs.StatusSucceeded); len(r.Attempts) != 2 {
		t.Fatalf("a run retried: %d attempts", len(r.Attempts))
	}
	if out, errOut, _ := in.gantry("logs", "-f", retried); out != "try 1\ntry 2\n" || errOut != "" {
		t.Errorf("logs -f of a run retried and ended: stdout %q, stderr %q", out, errOut)
	}
}

// TestRunFileNameChoosesTheContainer: with --file, --name was ignored and
// --env went to the first essential container; it names the container
// --env, --cpu, --memory and a command override, as with FAMILY[:REV].
// main waits for side to complete: once main (essential) exits, side is
// stopped, and a loaded machine starting side took longer than a sleep.
func TestRunFileNameChoosesTheContainer(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	td := filepath.Join(t.TempDir(), "two.json")
	os.WriteFile(td, []byte(`{"family": "two", "containerDefinitions": [
  {"name": "main", "image": "`+in.image+`", "command": ["sh", "-c", "echo main=${X:-unset}"],
   "dependsOn": [{"containerName": "side", "condition": "COMPLETE"}]},
  {"name": "side", "image": "`+in.image+`", "essential": false, "command": ["sh", "-c", "echo side=${X:-unset}"]}]}`), 0o644)
	out, errOut, code := in.gantry("run", "--file", td, "--name", "side", "--env", "X=y")
	if code != 0 || !strings.Contains(out, "side=y\n") || !strings.Contains(out, "main=unset\n") {
		t.Errorf("run --file --name side --env X=y: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = in.gantry("run", "--file", td, "--name", "nosuch", "--env", "X=y")
	if want := `--name "nosuch": ` + td + ` has no such container; its containers: main, side`; code != exitGantryError || !strings.Contains(errOut, want) {
		t.Errorf("run --file --name nosuch: exit %d, stderr %q; want %q", code, errOut, want)
	}
}
