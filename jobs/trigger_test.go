package jobs

import (
	"os"
	"strings"
	"testing"
)

func TestPipelineTriggersValidate(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the error; none: valid
	}{
		{"valid", `name: report
triggers: [{pipeline: daily-sales}, {pipeline: stock, on: failure}]
stages: [{name: a, taskDefinition: t}]`, nil},
		{"self and bad condition and twice", `name: report
triggers: [{pipeline: report}, {pipeline: x, on: sometimes}, {pipeline: x}, {on: success}]
stages: [{name: a, taskDefinition: t}]`, []string{
			`triggers[0].pipeline: "report": a pipeline cannot trigger itself`,
			`triggers[1].on: "sometimes": want success, failure or complete`,
			`triggers[2].pipeline: "x" is listed twice`,
			`triggers[3].pipeline: required`}},
		{"kind task has one stage", `name: t
kind: task
stages: [{name: a, taskDefinition: t}, {name: b, taskDefinition: t}]`, []string{"exactly one stage"}},
		{"unknown kind", "name: t\nkind: dag\nstages: [{name: a, taskDefinition: t}]", []string{`kind: "dag"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePipeline([]byte(tt.src))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestCheckTriggersFindsUnknownPipelinesAndCycles(t *testing.T) {
	all := []Pipeline{
		{Name: "a"},
		{Name: "b", Triggers: []Trigger{{Pipeline: "a"}}},
		{Name: "c", Triggers: []Trigger{{Pipeline: "b"}}},
	}
	// a is re-applied to start on c's runs: a -> b -> c -> a.
	err := CheckTriggers(&Pipeline{Name: "a", Triggers: []Trigger{{Pipeline: "c"}, {Pipeline: "ghost"}}}, all)
	if err == nil || !strings.Contains(err.Error(), "trigger cycle: a -> b -> c -> a") ||
		!strings.Contains(err.Error(), `triggers[1].pipeline: no pipeline "ghost"`) {
		t.Fatalf("got %v", err)
	}
	// d on c is fine: no way back to d.
	if err := CheckTriggers(&Pipeline{Name: "d", Triggers: []Trigger{{Pipeline: "c"}}}, all); err != nil {
		t.Fatal(err)
	}
	// Re-applying b with the same trigger is no cycle.
	if err := CheckTriggers(&Pipeline{Name: "b", Triggers: []Trigger{{Pipeline: "a"}}}, all); err != nil {
		t.Fatal(err)
	}
}

func TestSampleTriggeredPipelineParses(t *testing.T) {
	data, err := os.ReadFile("../samples/pipelines/sales-report.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePipeline(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Triggers) != 1 || p.Triggers[0].Pipeline != "daily-sales" || !p.Triggers[0].Fires(StatusSucceeded) || p.Parameters["day"].Default == "" {
		t.Fatalf("triggers %+v", p.Triggers)
	}
}

// A stopped upstream pipeline run triggers nothing, whatever on says:
// complete holds for a canceled stage, but a trigger is no stage.
func TestTriggerOnCompleteIgnoresAStoppedRun(t *testing.T) {
	tr := Trigger{Pipeline: "up", On: CondComplete}
	for s, want := range map[Status]bool{StatusSucceeded: true, StatusFailed: true, StatusCanceled: false} {
		if got := tr.Fires(s); got != want {
			t.Errorf("on complete, upstream %s: fires %v, want %v", s, got, want)
		}
	}
}
