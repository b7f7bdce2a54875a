package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gatedExtractPipeline's extract children print a line, then wait for the file
// open in the host directory DIR; transform runs after them.
const gatedExtractPipeline = `
name: gated
stages:
  - name: transform
    dependsOn: [extract]
    taskDefinition: {family: gated-transform, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo tr; echo tr-warn >&2']}]}
  - name: extract
    arraySize: 2
    taskDefinition:
      family: gated-extract
      containerDefinitions: [{name: main, image: gantry/samples:latest,
        command: [sh, -c, 'echo ex $GANTRY_ARRAY_INDEX; while ! test -f /gate/open; do sleep 0.05; done; printf "ex done $GANTRY_ARRAY_INDEX"'],
        mountPoints: [{sourceVolume: gate, containerPath: /gate}]}]
      volumes: [{name: gate, host: {sourcePath: DIR}}]
`

// TestLogsOfAPipelineRun: gantry logs pr-... as a submit-only user, with
// -f, follows the stage runs there are (extract's children, waiting) and
// the one that starts later (transform), each line labelled, until the
// pipeline run ends, exit 0; ended, it prints the stages in DAG order, a
// run's lines together; --stage, --no-prefix, --tail; unknown stages and
// pipeline runs are named.
func TestLogsOfAPipelineRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := startUpEnv(t, []string{"GANTRY_NATS_USER=op", "GANTRY_NATS_PASSWORD=op-secret"}, "--allow-host-path", dir,
		"--user", "op", "--password", "op-secret", "--submit-user", "app", "--submit-password", "app-secret")
	app := append(append([]string{}, in.env...), "GANTRY_NATS_USER=app", "GANTRY_NATS_PASSWORD=app-secret")
	in.applyPipeline("gated", strings.ReplaceAll(gatedExtractPipeline, "DIR", dir))
	id := strings.TrimSpace(in.mustGantry("pipeline", "run", "gated", "-d"))

	f := &eventsProc{cmd: exec.Command(gantryBin, "logs", "-f", id), out: &syncBuffer{}, errOut: &syncBuffer{}, exited: make(chan struct{})}
	f.cmd.Env = app
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.errOut
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.cmd.Wait(); close(f.exited) }()
	t.Cleanup(func() { _ = f.cmd.Process.Kill(); <-f.exited })
	// transform cannot have started before both lines: it starts while
	// logs -f follows.
	f.waitOut(t, "extract[0] | ex 0")
	f.waitOut(t, "extract[1] | ex 1")
	if err := os.WriteFile(filepath.Join(dir, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(t); code != 0 || !strings.Contains(f.out.String(), "transform | tr\n") ||
		!strings.Contains(f.out.String(), "extract[1] | ex done 1\n") || f.errOut.String() != "transform | tr-warn\n" {
		t.Fatalf("logs -f %s as the submitter: exit %d, stdout:\n%s\nstderr:\n%s", id, code, f.out, f.errOut)
	}

	// Ended: DAG order (the file lists transform first), a run's lines
	// together; a last line without a newline gets one.
	out, errOut, code := in.gantry("logs", id)
	if want := "extract[0] | ex 0\nextract[0] | ex done 0\nextract[1] | ex 1\nextract[1] | ex done 1\ntransform | tr\n"; code != 0 || out != want || errOut != "transform | tr-warn\n" {
		t.Errorf("logs %s: exit %d, stdout %q, stderr %q; want %q", id, code, out, errOut, want)
	}
	// --tail 1 is each stage run's last line (transform's on stdout or
	// stderr: the two streams are read apart).
	if out, errOut, _ := runBin(t, app, "logs", id, "--tail", "1", "-t"); !containsAll(out, "extract[0] | 20", "Z ex done 0\n", "extract[1] | 20") ||
		strings.Contains(out, "ex 1\n") || strings.Count(out+errOut, "transform | 20") != 1 {
		t.Errorf("logs --tail 1 -t: stdout %q, stderr %q", out, errOut)
	}
	if out, _, _ := in.gantry("logs", id, "--stage", "transform", "--no-prefix"); out != "tr\n" {
		t.Errorf("logs --stage transform --no-prefix: %q", out)
	}
	_, errOut, code = in.gantry("logs", id, "--stage", "load", "--stage", "extract")
	oneLineError(t, "logs --stage load", errOut, code, `--stage: pipeline run `+id+` has no stage "load"; its stages: extract, transform`)
	const nosuch = "pr-01jzzzzzzzzzzzzzzzzzzzzzzz"
	_, errOut, code = runBin(t, app, "logs", nosuch)
	oneLineError(t, "logs of an unknown pipeline run", errOut, code, nosuch, "not found")
	if out, _, _ := in.gantry("__complete", "logs", id, "--stage", ""); !containsAll(out, "extract", "transform") {
		t.Errorf("__complete logs %s --stage '': %q", id, out)
	}
}
