package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// flakyPipeline's transform fails until the file ok is in the host
// directory DIR, and reads extract's file when it runs.
const flakyPipeline = `
name: flaky-etl
stages:
  - name: extract
    taskDefinition: {family: flaky-extract, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo rows-of-extract > /gantry/out/rows.txt']}]}
  - name: transform
    dependsOn: [extract]
    taskDefinition:
      family: flaky-transform
      containerDefinitions: [{name: main, image: gantry/samples:latest,
        command: [sh, -c, 'test -f /flag/ok || { echo upstream not ready >&2; exit 3; }; cat /gantry/in/extract/rows.txt'],
        mountPoints: [{sourceVolume: flag, containerPath: /flag}]}]
      volumes: [{name: flag, host: {sourcePath: DIR}}]
`

// TestPipelineRetryRunsTheFailedStageAgain: a pipeline run that failed at
// its second stage is retried under its id; the first stage is not run
// again and its file reaches the retried stage; the failed try's run and
// logs stay.
func TestPipelineRetryRunsTheFailedStageAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := startUp(t, "--allow-host-path", dir)
	in.applyPipeline("flaky-etl", strings.ReplaceAll(flakyPipeline, "DIR", dir))
	out, errOut, code := in.gantry("pipeline", "run", "flaky-etl")
	if code != exitPipelineFailed || !strings.Contains(errOut, "upstream not ready") {
		t.Fatalf("first run: exit %d\n%s\n%s", code, out, errOut)
	}
	id := in.runsOf("flaky-etl")[0].PipelineRunID
	before := in.pipelineRun(id)
	extract, failed := before.StageState("extract").Runs[0].RunID, before.StageState("transform").Runs[0].RunID

	if err := os.WriteFile(filepath.Join(dir, "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = in.gantry("pipeline", "retry", id)
	if code != 0 || !strings.Contains(out, "pipeline run "+id+" SUCCEEDED") {
		t.Fatalf("retry: exit %d\n%s\n%s\n%s", code, out, errOut, in.log)
	}
	pr := in.pipelineRun(id)
	tr := pr.StageState("transform")
	if pr.Retries != 1 || pr.StageState("extract").Runs[0].RunID != extract || tr.Try != 2 ||
		len(tr.EarlierTries) != 1 || tr.EarlierTries[0].Runs[0].RunID != failed {
		t.Fatalf("after the retry: retries %d, extract %+v, transform %+v", pr.Retries, pr.StageState("extract"), tr)
	}
	if logs, _, _ := in.gantry("logs", tr.Runs[0].RunID); !strings.Contains(logs, "rows-of-extract") {
		t.Errorf("the retried transform did not read extract's file: %q", logs)
	}
	if stdout, stderr, _ := in.gantry("logs", failed); !strings.Contains(stdout+stderr, "upstream not ready") {
		t.Errorf("the failed try's logs: %q %q", stdout, stderr)
	}
	// gantry logs of the pipeline run names each try of transform
	// (extract wrote nothing).
	if stdout, stderr, _ := in.gantry("logs", id); stdout != "transform (try 2) | rows-of-extract\n" || stderr != "transform (try 1) | upstream not ready\n" {
		t.Errorf("logs %s: stdout %q, stderr %q", id, stdout, stderr)
	}
	if tbl, _, _ := in.gantry("describe", id); !strings.Contains(tbl, "transform (try 1)") || !strings.Contains(tbl, "transform (try 2)") ||
		!strings.Contains(tbl, failed) || !strings.Contains(tbl, "Retries:") {
		t.Errorf("describe table:\n%s", tbl)
	}
	_, errOut, code = in.gantry("pipeline", "retry", id, "-d")
	oneLineError(t, "retry of a succeeded run", errOut, code, id+" SUCCEEDED: nothing to retry")
	if pr := in.pipelineRun(id); pr.Status != jobs.StatusSucceeded || pr.Retries != 1 {
		t.Errorf("a refused retry changed the run: %s, %d retries", pr.Status, pr.Retries)
	}
}
