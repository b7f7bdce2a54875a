package jobs

import (
	"strings"
	"testing"
	"time"
)

func TestPipelineDependsOnPastParse(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want string // "" for valid
		on   bool
	}{
		{"", "", false},
		{"dependsOnPast: true\n", "", true},
		{"dependsOnPast: false\n", "", false},
		{"dependsOnPast: True\n", "", true}, // YAML's own spelling of true
		{"dependsOnPast: null\n", "", false},
		{"dependsOnPast: yes\n", `dependsOnPast: "yes": want true or false ("yes" is a string here: write true, unquoted)`, false},
		{"dependsOnPast: \"true\"\n", `dependsOnPast: "true": want true or false ("true" is a string here: write true, unquoted)`, false},
		{"dependsOnPast: off\n", `dependsOnPast: "off": want true or false ("off" is a string here: write false, unquoted, or leave dependsOnPast out)`, false},
		{"dependsOnPast: 1\n", "dependsOnPast: 1: want true or false", false},
		{"dependsOnPast: [true]\n", "dependsOnPast: [true]: want true or false", false},
		{"dependsOnPast: {a: 1}\n", "dependsOnPast: {\"a\":1}: want true or false", false},
		{"dependOnPast: true\n", `dependOnPast: unknown field; did you mean "dependsOnPast"?`, false},
	} {
		p, err := ParsePipeline([]byte("name: p\n" + tc.yaml + "stages: [{name: a, taskDefinition: t}]\n"))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		case tc.want == "" && p.DependsOnPast != tc.on:
			t.Errorf("%q: dependsOnPast %v, want %v", tc.yaml, p.DependsOnPast, tc.on)
		}
	}
	// With the file's other problems, all at once.
	_, err := ParsePipeline([]byte("name: p\ndependsOnPast: yes\nmaxActiveRun: 1\nstages: [{name: a, taskDefinition: t}]\n"))
	if err == nil || !strings.Contains(err.Error(), "dependsOnPast: \"yes\"") || !strings.Contains(err.Error(), "maxActiveRun: unknown field") {
		t.Errorf("two problems: %v", err)
	}
}

func TestPipelineChangesDependsOnPast(t *testing.T) {
	off, err := ParsePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	on, err := ParsePipeline([]byte("name: p\ndependsOnPast: true\nstages: [{name: a, taskDefinition: t}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := PipelineChanges(off, on); len(got) != 1 || got[0] != "dependsOnPast: added true" {
		t.Errorf("turned on: %q", got)
	}
	if got := PipelineChanges(on, off); len(got) != 1 || got[0] != "dependsOnPast: removed (was true)" {
		t.Errorf("turned off: %q", got)
	}
	if got := PipelineChanges(on, on); len(got) != 0 {
		t.Errorf("unchanged: %q", got)
	}
}

func TestWaitsForPast(t *testing.T) {
	at := time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)
	on, off := &Pipeline{DependsOnPast: true}, &Pipeline{}
	scheduled, manual := &PipelineRun{ScheduledTime: &at}, &PipelineRun{}
	if !WaitsForPast(on, scheduled) || WaitsForPast(on, manual) || WaitsForPast(off, scheduled) || WaitsForPast(nil, scheduled) {
		t.Error("only a run with a scheduled time of a pipeline with dependsOnPast waits for its past")
	}
}

// The previous run holds the next back unless it SUCCEEDED; the reason
// says how it stands and, once it ended otherwise, what to do.
func TestDependsOnPastWaitReason(t *testing.T) {
	at := time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)
	prev := func(s Status, stop bool) *PipelineRun {
		return &PipelineRun{PipelineRunID: "pr-day1", Status: s, ScheduledTime: &at, StopRequested: stop,
			StatusReason: "waiting: 1 of 1 active runs of p (maxActiveRuns)"}
	}
	const head = "waiting for pr-day1 (scheduled 2026-12-05T02:00:00Z) to succeed (dependsOnPast): "
	for _, tc := range []struct {
		prev  *PipelineRun
		holds bool
		want  string
	}{
		{nil, false, ""},
		{prev(StatusSucceeded, false), false, ""},
		{prev(StatusFailed, false), true, head + "it FAILED; gantry pipeline retry pr-day1 runs it again"},
		{prev(StatusCanceled, false), true, head + "it was CANCELED; gantry pipeline retry pr-day1 runs it again"},
		{prev(StatusRunning, false), true, head + "it is RUNNING"},
		{prev(StatusRunning, true), true, head + "it is being stopped"},
		{prev(StatusPending, false), true, head + "it is PENDING"},
		{prev(StatusPending, true), true, head + "it is being stopped"},
	} {
		if got := PastHolds(tc.prev); got != tc.holds {
			t.Errorf("%+v: holds %v, want %v", tc.prev, got, tc.holds)
		}
		if tc.prev == nil || !tc.holds {
			continue
		}
		if got := DependsOnPastWaitReason(tc.prev); got != tc.want {
			t.Errorf("%s stop=%v: %q, want %q", tc.prev.Status, tc.prev.StopRequested, got, tc.want)
		}
	}
}
