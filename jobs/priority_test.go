package jobs

import (
	"strings"
	"testing"
)

func TestPriorityValidation(t *testing.T) {
	for _, p := range []Priority{"", PriorityHigh, PriorityNormal, PriorityLow} {
		if err := (SubmitRequest{Priority: p}).Validate(); err != nil {
			t.Errorf("priority %q: %v", p, err)
		}
	}
	for _, p := range []Priority{"HIGH", "urgent", " low", "0"} {
		err := (SubmitRequest{Priority: p}).Validate()
		if err == nil || !strings.Contains(err.Error(), "priority: ") || !strings.Contains(err.Error(), "want high, normal or low") {
			t.Errorf("priority %q: %v, want an error naming the field", p, err)
		}
	}
	_, err := ParsePipeline([]byte(`name: p
priority: urgent
stages:
  - {name: a, taskDefinition: t, priority: HIGH}
  - {name: b, taskDefinition: t, priority: low}
`))
	for _, want := range []string{`priority: "urgent": want high, normal or low`, `stages[0](a).priority: "HIGH": want high, normal or low`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("pipeline with bad priorities: %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "stages[1]") {
		t.Errorf("a good stage priority refused: %v", err)
	}
	if _, err := ParsePriority("medium"); err == nil {
		t.Error("ParsePriority(medium) accepted")
	}
}

func TestStagePriority(t *testing.T) {
	st := func(p Priority) *Stage { return &Stage{Name: "s", Priority: p} }
	for _, tc := range []struct {
		run, stage, pipeline, want Priority
	}{
		{"", "", "", PriorityNormal},
		{"", "", PriorityHigh, PriorityHigh},
		{"", PriorityLow, PriorityHigh, PriorityLow},           // the stage's wins
		{PriorityLow, PriorityHigh, PriorityHigh, PriorityLow}, // the run's (--priority) wins over both
		{PriorityNormal, "", PriorityLow, PriorityNormal},
	} {
		pr := &PipelineRun{Priority: tc.run, Spec: Pipeline{Priority: tc.pipeline}}
		if got := pr.StagePriority(st(tc.stage)); got != tc.want {
			t.Errorf("run %q, stage %q, pipeline %q: %q, want %q", tc.run, tc.stage, tc.pipeline, got, tc.want)
		}
	}
}
