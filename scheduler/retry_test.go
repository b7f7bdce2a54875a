package scheduler

import (
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func TestRetryStages(t *testing.T) {
	p := &jobs.Pipeline{Name: "p", Stages: []jobs.Stage{
		{Name: "a"},
		{Name: "b", DependsOn: []jobs.Dependency{{Stage: "a"}}},
		{Name: "c", DependsOn: []jobs.Dependency{{Stage: "b"}}},
		{Name: "alert", DependsOn: []jobs.Dependency{{Stage: "b", Condition: jobs.CondFailure}}},
		{Name: "side", DependsOn: []jobs.Dependency{{Stage: "a"}}},
	}}
	for _, tc := range []struct {
		name     string
		statuses map[string]jobs.Status
		want     []string
		kept     map[string][]string
	}{
		{"a stage failed", map[string]jobs.Status{"a": jobs.StatusSucceeded, "b": jobs.StatusFailed, "c": jobs.StatusSkipped,
			"alert": jobs.StatusSucceeded, "side": jobs.StatusSucceeded},
			[]string{"b", "c", "alert"}, map[string][]string{"b": {"a"}}},
		{"the first stage failed", map[string]jobs.Status{"a": jobs.StatusFailed, "b": jobs.StatusSkipped, "c": jobs.StatusSkipped,
			"alert": jobs.StatusSkipped, "side": jobs.StatusSkipped},
			[]string{"a", "b", "c", "alert", "side"}, map[string][]string{}},
		{"stopped", map[string]jobs.Status{"a": jobs.StatusSucceeded, "b": jobs.StatusSucceeded, "c": jobs.StatusCanceled,
			"alert": jobs.StatusSkipped, "side": jobs.StatusCanceled},
			[]string{"c", "alert", "side"}, map[string][]string{"c": {"b"}, "alert": {"b"}, "side": {"a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := NewPipelineRun(p, "pr-1", nil, time.Now())
			for i := range pr.Stages {
				pr.Stages[i].Status = tc.statuses[pr.Stages[i].Name]
			}
			got := RetryStages(pr)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("RetryStages %v, want %v", got, tc.want)
			}
			kept := KeptInputs(pr, got)
			if len(kept) != len(tc.kept) {
				t.Errorf("KeptInputs %v, want %v", kept, tc.kept)
			}
			for k, v := range tc.kept {
				if !slices.Equal(kept[k], v) {
					t.Errorf("KeptInputs %v, want %v", kept, tc.kept)
				}
			}
			pr.Status, pr.StopRequested, pr.StoppedReason = jobs.StatusFailed, true, "stopped"
			Retry(pr, got, time.Now())
			if pr.Status != jobs.StatusRunning || pr.StopRequested || pr.StoppedReason != "" || pr.Retries != 1 {
				t.Errorf("run after Retry: %s stop %v %q retries %d", pr.Status, pr.StopRequested, pr.StoppedReason, pr.Retries)
			}
			for _, st := range pr.Stages {
				again := slices.Contains(got, st.Name)
				if again != (st.Status == jobs.StatusPending && st.Try == 2 && len(st.EarlierTries) == 1) {
					t.Errorf("stage %s after Retry: %+v", st.Name, st)
				}
			}
			if k := stageKey(pr, got[0]); k != "pipeline/pr-1/"+got[0]+"/try2" {
				t.Errorf("stage key of a second try %q", k)
			}
		})
	}
}

// A stage sized by an output reads the outputs.env of a stage that may be
// upstream of it only through another: a retry that keeps that stage
// needs its files as it does a direct dependency's, so that a retry past
// the data retention is refused naming it rather than failing the stage
// with the output "not set".
func TestKeptInputsArraySizeFrom(t *testing.T) {
	p := &jobs.Pipeline{Name: "p", Stages: []jobs.Stage{
		{Name: "extract"},
		{Name: "check", DependsOn: []jobs.Dependency{{Stage: "extract"}}},
		{Name: "transform", DependsOn: []jobs.Dependency{{Stage: "check"}},
			ArraySize: jobs.ArraySize{From: &jobs.OutputRef{Stage: "extract", Key: "FILES"}}},
		{Name: "fixed", DependsOn: []jobs.Dependency{{Stage: "extract"}},
			ArraySize: jobs.ArraySize{From: &jobs.OutputRef{Stage: "extract", Key: "N"}}},
	}}
	pr := NewPipelineRun(p, "pr-1", nil, time.Now())
	for i, s := range []jobs.Status{jobs.StatusSucceeded, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusFailed} {
		pr.Stages[i].Status = s
	}
	kept := KeptInputs(pr, RetryStages(pr))
	if len(kept) != 2 || !slices.Equal(kept["transform"], []string{"check", "extract"}) || !slices.Equal(kept["fixed"], []string{"extract"}) {
		t.Fatalf("KeptInputs %v, want transform: [check extract], fixed: [extract]", kept)
	}
}
