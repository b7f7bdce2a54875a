package server

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go/micro"
)

// TestRegisteredStageDefinitionTakesRefParameters: a stage running a
// registered task definition gets the pipeline run's parameters in its
// commands' Ref::name, as an inline definition does (and as AWS Batch
// fills a job definition's). Its ${...} and its environment are left as
// registered: they are the shell's, and the definition runs outside
// pipelines too. A reference to a parameter the pipeline does not declare
// is refused at apply with the error an inline definition's gets, unless
// the stage overrides that command.
func TestRegisteredStageDefinitionTakesRefParameters(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", `{"family":"greet","containerDefinitions":[{"name":"main","image":"gantry/samples:latest",`+
		`"command":["sh","-c","echo Ref::day ${day} $HOME","Ref::day"],"environment":[{"name":"D","value":"Ref::day"}],"memory":64}]}`, nil)
	e.apply("name: greeting\nparameters: {day: '2026-01-01'}\nstages:\n- {name: one, taskDefinition: greet}\n" +
		"- {name: two, taskDefinition: {family: inl, containerDefinitions: [{name: main, image: 'gantry/samples:latest', memory: 64, command: [echo, 'Ref::day']}]}}\n")

	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"greeting","parameters":{"day":"2026-11-24"}}`, &pr)
	for stage, want := range map[string][]string{
		"one": {"sh", "-c", "echo 2026-11-24 ${day} $HOME", "2026-11-24"},
		"two": {"echo", "2026-11-24"},
	} {
		st := pr.StageState(stage)
		if st == nil || len(st.Runs) != 1 {
			t.Fatalf("stage %s: %+v", stage, st)
		}
		var r jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, st.Runs[0].RunID), &r)
		c := r.Spec.Task.ContainerDefinitions[0]
		if !slices.Equal(c.Command, want) {
			t.Errorf("stage %s's command %q, want %q", stage, c.Command, want)
		}
		if stage == "one" && (r.TaskDefinition != "greet:1" || c.Environment[0].Value != "Ref::day") {
			t.Errorf("stage one's run of %s with environment %v", r.TaskDefinition, c.Environment)
		}
	}

	apply := func(src string) *jobs.Error {
		body, _ := json.Marshal(map[string][]byte{"data": []byte(src)})
		m := e.req(e.op, "gantry.api.pipelines.apply", string(body))
		if m.Header.Get(micro.ErrorCodeHeader) == "" {
			return nil
		}
		err := apiError(t, m)
		return &err
	}
	err := apply("name: unknown\nstages:\n- {name: one, taskDefinition: greet}\n" +
		"- {name: two, taskDefinition: {family: inl, containerDefinitions: [{name: main, image: i, command: [echo, 'Ref::day']}]}}\n")
	for _, want := range []string{
		"stages[0](one).taskDefinition(greet:1).containerDefinitions[0].command[2]: unknown parameter Ref::day",
		"stages[0](one).taskDefinition(greet:1).containerDefinitions[0].command[3]: unknown parameter Ref::day",
		"stages[1](two).taskDefinition.containerDefinitions[0].command[1]: unknown parameter Ref::day",
	} {
		if err == nil || err.Code != jobs.CodeInvalidArgument || !strings.Contains(err.Message, want) {
			t.Errorf("apply with an undeclared Ref::day: %+v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Message, "${day}") {
		t.Errorf("the registered definition's ${day} is the shell's: %s", err.Message)
	}
	if err := apply("name: overridden\nstages:\n- {name: one, taskDefinition: greet, overrides: {containerOverrides: [{name: main, command: ['true']}]}}\n"); err != nil {
		t.Errorf("a stage overriding the command: %+v", err)
	}
}
