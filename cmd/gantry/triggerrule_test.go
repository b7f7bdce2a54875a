package main

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestWebUIShowsTriggerRules: the pipeline's page and a pipeline run's
// give a stage's trigger rule after its dependencies, whose conditions
// it replaces; plain dependencies keep their conditions.
func TestWebUIShowsTriggerRules(t *testing.T) {
	pl, err := jobs.ParsePipeline([]byte(`
name: nof
stages:
  - name: load
    taskDefinition: {family: load, containerDefinitions: [{name: main, image: i}]}
  - name: notify
    dependsOn: [load]
    triggerRule: oneFailed
    taskDefinition: {family: notify, containerDefinitions: [{name: main, image: i}]}
  - name: cleanup
    dependsOn: [load, notify]
    triggerRule: allDone
    taskDefinition: {family: cleanup, containerDefinitions: [{name: main, image: i}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	b := pipelineBody{Pipeline: pl}
	for _, s := range pl.Order() {
		b.Stages = append(b.Stages, *pl.Stage(s))
	}
	pr := &jobs.PipelineRun{PipelineRunID: "pr-1", Pipeline: "nof", Status: jobs.StatusFailed, Spec: *pl, Stages: []jobs.StageState{
		{Name: "load", Status: jobs.StatusFailed}, {Name: "notify", Status: jobs.StatusSucceeded}, {Name: "cleanup", Status: jobs.StatusSucceeded}}}
	for page, got := range map[string]string{
		"pipeline":     renderUI(t, "pipeline", b),
		"pipeline run": renderUI(t, "pipelinerun", pipelineRunBody{Run: pr, Stages: stageRowsOf(pr)}),
	} {
		for _, want := range []string{"<td>load (triggerRule oneFailed)</td>", "<td>load notify (triggerRule allDone)</td>"} {
			if !strings.Contains(got, want) {
				t.Errorf("the %s page lacks %q:\n%s", page, want, got)
			}
		}
	}
}
