package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// End-to-end tests of `gantry pipeline delete` and `gantry schedule
// delete` against `gantry up`.

// everySecond fires every second; its run outlives the fire interval, and
// Forbid keeps it to one at a time.
const everySecond = `
name: ticker
schedule: {cron: "@every 1s", concurrencyPolicy: Forbid}
stages:
  - name: only
    taskDefinition: {family: ticker, containerDefinitions: [{name: main, image: gantry/samples:latest, stopTimeout: 2,
      command: [sh, -c, "trap 'exit 143' TERM; sleep 60 & wait"]}]}
`

// pipelineRunsOf lists the runs of a pipeline, deleted or not, through the
// client: `gantry pipeline runs NAME` needs the pipeline.
func (in *instance) pipelineRunsOf(name string) []jobs.PipelineRun {
	in.t.Helper()
	all, err := in.client().PipelineRuns(context.Background(), "", 1000)
	if err != nil {
		in.t.Fatal(err)
	}
	var out []jobs.PipelineRun
	for _, pr := range all {
		if pr.Pipeline == name {
			out = append(out, pr)
		}
	}
	return out
}

// oneLineError checks a failed command exited 125 with one line naming
// every want.
func oneLineError(t *testing.T, what, stderr string, code int, want ...string) {
	t.Helper()
	if code != exitGantryError || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("%s: exit %d, want 125 and one line: %q", what, code, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: %q does not say %q", what, stderr, w)
		}
	}
}

func TestPipelineDeleteStopsItsSchedule(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.applyPipeline("ticker", everySecond)
	var fired []jobs.PipelineRun
	waitFor(t, "the schedule's first fire", func() bool { fired = in.pipelineRunsOf("ticker"); return len(fired) > 0 })
	if out, _, _ := in.gantry("__complete", "pipeline", "delete", "ti"); !strings.Contains(out, "ticker") {
		t.Errorf("__complete pipeline delete ti:\n%s", out)
	}

	_, errOut, code := in.gantry("pipeline", "delete", "nosuch")
	oneLineError(t, "delete nosuch", errOut, code, "pipeline nosuch: not found")
	// Its run is active: refused, the run named.
	_, errOut, code = in.gantry("pipeline", "delete", "ticker")
	oneLineError(t, "delete with an active run", errOut, code, fired[0].PipelineRunID, "force")
	if ls := in.mustGantry("schedule", "ls"); !strings.Contains(ls, "ticker") {
		t.Fatalf("a refused delete deleted the schedule:\n%s", ls)
	}

	out := in.mustGantry("pipeline", "delete", "ticker", "--force")
	if !strings.Contains(out, "pipeline run "+fired[0].PipelineRunID+" stopped") || !strings.HasSuffix(out, "pipeline ticker deleted\n") {
		t.Fatalf("pipeline delete --force:\n%s", out)
	}
	for _, ls := range [][]string{{"schedule", "ls"}, {"pipeline", "ls"}} {
		if out := in.mustGantry(ls...); strings.Contains(out, "ticker") {
			t.Errorf("%s still lists it:\n%s", strings.Join(ls, " "), out)
		}
	}
	// The stopped run ends CANCELED and stays readable by id.
	pr := in.waitPipeline(fired[0].PipelineRunID, ended)
	if pr.Status != jobs.StatusCanceled || pr.Pipeline != "ticker" {
		t.Errorf("the stopped run: %s of %s", pr.Status, pr.Pipeline)
	}
	if out := in.mustGantry("describe", pr.PipelineRunID); !strings.Contains(out, "Pipeline:") || !strings.Contains(out, "ticker") {
		t.Errorf("describe after delete:\n%s", out)
	}
	// A schedule firing every second, with nothing active to forbid it,
	// would have fired within three.
	before := len(in.pipelineRunsOf("ticker"))
	time.Sleep(3 * time.Second)
	if after := in.pipelineRunsOf("ticker"); len(after) != before {
		t.Errorf("%d runs after the delete, %d before: the schedule still fires", len(after), before)
	}
	_, errOut, code = in.gantry("pipeline", "runs", "ticker")
	oneLineError(t, "pipeline runs of a deleted pipeline", errOut, code, "not found")
}

func TestScheduleDeleteCommand(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.mustGantry("taskdef", "register", in.writeTaskDef("cleanup.json", scheduledTaskDef))
	in.mustGantry("schedule", "create", "--task", "cleanup", "--cron", "@every 1s", "--concurrency-policy", "Forbid")
	in.applyPipeline("nightly", backfilledPipeline) // a pipeline's schedule
	waitFor(t, "the task schedule's first fire", func() bool { return len(in.pipelineRunsOf("cleanup")) > 0 })
	if out, _, _ := in.gantry("__complete", "schedule", "delete", ""); !strings.Contains(out, "cleanup") || strings.Contains(out, "nightly") {
		t.Errorf("__complete schedule delete '' should offer task schedules only:\n%s", out)
	}

	_, errOut, code := in.gantry("schedule", "delete", "nosuch")
	oneLineError(t, "delete nosuch", errOut, code, "schedule nosuch: not found")
	_, errOut, code = in.gantry("schedule", "delete", "nightly")
	oneLineError(t, "delete a pipeline's schedule", errOut, code, "part of pipeline nightly", "delete the pipeline")

	var d struct {
		Name    string   `json:"name"`
		Deleted bool     `json:"deleted"`
		Running []string `json:"running"`
	}
	if out := in.mustGantry("schedule", "delete", "cleanup", "-o", "json"); json.Unmarshal([]byte(out), &d) != nil || d.Name != "cleanup" || !d.Deleted {
		t.Fatalf("schedule delete -o json: %s", out)
	}
	ls := in.mustGantry("schedule", "ls")
	if strings.Contains(ls, "cleanup") || !strings.Contains(ls, "nightly") {
		t.Errorf("schedule ls after delete:\n%s", ls)
	}
	runs := in.pipelineRunsOf("cleanup")
	for _, pr := range runs {
		in.waitPipeline(pr.PipelineRunID, ended) // the runs it started go on to their end
	}
	time.Sleep(3 * time.Second)
	if after := in.pipelineRunsOf("cleanup"); len(after) != len(runs) {
		t.Errorf("%d runs after the delete, %d before: the schedule still fires", len(after), len(runs))
	}
}
