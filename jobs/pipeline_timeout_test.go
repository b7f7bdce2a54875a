package jobs

import (
	"strings"
	"testing"
	"time"
)

func TestPipelineTimeoutValidation(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want string // "" for valid
	}{
		{"", ""},
		{"timeoutSeconds: 0\n", ""},
		{"timeoutSeconds: 7200\n", ""},
		{"timeoutSeconds: 1576800000\n", ""}, // 50 years
		{"timeoutSeconds: -1\n", "timeoutSeconds: -1: must be positive; leave it out for no limit"},
		{"timeoutSeconds: 1576800001\n", "timeoutSeconds: 1576800001: must be at most 1576800000 (50 years); leave it out for no limit"},
		{"timeoutSeconds: 2h\n", "timeoutSeconds"},
		{"timeoutSeconds: 1.5\n", "timeoutSeconds"},
	} {
		// The stage's own bad timeout is named too: every problem at once
		// (a value that is no integer stops the decoding first).
		_, err := ParsePipeline([]byte("name: p\n" + tc.yaml + "stages: [{name: a, taskDefinition: t, timeoutSeconds: -3}]\n"))
		if tc.want != "timeoutSeconds" && (err == nil || !strings.Contains(err.Error(), "stages[0](a).timeoutSeconds: must not be negative")) {
			t.Errorf("%q: %v, want the stage's timeoutSeconds named", tc.yaml, err)
		}
		_, err = ParsePipeline([]byte("name: p\n" + tc.yaml + "stages: [{name: a, taskDefinition: t}]\n"))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if err := CheckTimeoutSeconds("timeoutSeconds", -5); err == nil || err.Error() != "timeoutSeconds: -5: must be positive; leave it out for no limit" {
		t.Errorf("CheckTimeoutSeconds(-5): %v", err)
	}
}

// The deadline counts from the run's start RUNNING, or from its latest
// retry; a run PENDING (a backfill's waiting for its turn), ended,
// stopped or without a timeout has none.
func TestPipelineRunDeadline(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := t0.Add(d); return &t }
	for _, tc := range []struct {
		name string
		pr   PipelineRun
		want *time.Time // nil: no deadline
	}{
		{"running", PipelineRun{Status: StatusRunning, TimeoutSeconds: 60, StartedAt: at(0)}, at(time.Minute)},
		{"retried", PipelineRun{Status: StatusRunning, TimeoutSeconds: 60, StartedAt: at(0), Retries: 1, RetriedAt: at(time.Hour)},
			at(time.Hour + time.Minute)},
		{"no timeout", PipelineRun{Status: StatusRunning, StartedAt: at(0)}, nil},
		{"pending", PipelineRun{Status: StatusPending, TimeoutSeconds: 60}, nil},
		{"promoted, not advanced yet", PipelineRun{Status: StatusRunning, TimeoutSeconds: 60}, nil},
		{"stopping", PipelineRun{Status: StatusRunning, TimeoutSeconds: 60, StartedAt: at(0), StopRequested: true}, nil},
		{"ended", PipelineRun{Status: StatusFailed, TimeoutSeconds: 60, StartedAt: at(0), FinishedAt: at(time.Second)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.pr.Deadline()
			switch {
			case tc.want == nil && ok:
				t.Fatalf("deadline %s, want none", got)
			case tc.want != nil && (!ok || !got.Equal(*tc.want)):
				t.Fatalf("deadline %s %v, want %s", got, ok, tc.want)
			}
			if tc.want != nil && (tc.pr.TimedOut(tc.want.Add(-time.Nanosecond)) || !tc.pr.TimedOut(*tc.want)) {
				t.Fatal("TimedOut does not turn true at the deadline")
			}
		})
	}
	pr := PipelineRun{TimeoutSeconds: 7200}
	if got := pr.TimeoutReason(); got != "pipeline run timed out after 2h0m0s (timeoutSeconds 7200)" {
		t.Errorf("reason %q", got)
	}
	pr.Retries = 2
	if got := pr.TimeoutReason(); got != "pipeline run timed out 2h0m0s after retry 2 (timeoutSeconds 7200)" {
		t.Errorf("retried run's reason %q", got)
	}
}

func TestPipelineMaxActiveRunsValidation(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want string // "" for valid
		n    int    // the bound parsed; 0 for none
	}{
		{"", "", 0},
		{"maxActiveRuns: 1\n", "", 1},
		{"maxActiveRuns: 16\n", "", 16},
		{"maxActiveRuns: 0\n", "maxActiveRuns: must be at least 1, got 0; leave it out for no bound", 0},
		{"maxActiveRuns: -2\n", "maxActiveRuns: must be at least 1, got -2; leave it out for no bound", 0},
		{"maxActiveRuns: two\n", "maxActiveRuns", 0},
		{"maxActiveRuns: 1.5\n", "maxActiveRuns", 0},
		{"maxActiveRun: 2\n", `maxActiveRun: unknown field; did you mean "maxActiveRuns"?`, 0},
	} {
		p, err := ParsePipeline([]byte("name: p\n" + tc.yaml + "stages: [{name: a, taskDefinition: t}]\n"))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		case tc.want == "" && tc.n == 0 && p.MaxActiveRuns != nil:
			t.Errorf("%q: bound %d, want none", tc.yaml, *p.MaxActiveRuns)
		case tc.want == "" && tc.n > 0 && (p.MaxActiveRuns == nil || *p.MaxActiveRuns != tc.n):
			t.Errorf("%q: bound %v, want %d", tc.yaml, p.MaxActiveRuns, tc.n)
		}
	}
	// Every problem at once: the bound's and a stage's.
	_, err := ParsePipeline([]byte("name: p\nmaxActiveRuns: 0\nstages: [{name: a, taskDefinition: t, arraySize: -1}]\n"))
	if err == nil || !strings.Contains(err.Error(), "maxActiveRuns: must be at least 1") || !strings.Contains(err.Error(), "stages[0](a).arraySize") {
		t.Errorf("two problems: %v", err)
	}
}
