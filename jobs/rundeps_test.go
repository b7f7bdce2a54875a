package jobs

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRunDependencyValidation: every problem of a submission's dependsOn
// is named with its field path, all at once.
func TestRunDependencyValidation(t *testing.T) {
	const a, b = "01jaaaaaaaaaaaaaaaaaaaaaaa", "01jbbbbbbbbbbbbbbbbbbbbbbb"
	many := make([]RunDependency, MaxRunDependencies+1)
	for i := range many {
		many[i] = RunDependency{RunID: fmt.Sprintf("run%d", i)}
	}
	for _, tt := range []struct {
		name string
		deps []RunDependency
		want []string // nil: valid
	}{
		{"none", nil, nil},
		{"default condition", []RunDependency{{RunID: a}}, nil},
		{"every condition", []RunDependency{{RunID: a, Condition: CondFailure}, {RunID: b, Condition: CondComplete}}, nil},
		{"the most", many[:MaxRunDependencies], nil},
		{"too many", many, []string{"dependsOn: 21 runs: at most 20 (as AWS Batch allows)"}},
		{"every problem", []RunDependency{{}, {RunID: a, Condition: "succeeded"}, {RunID: "pr-01jx"}, {RunID: "a b"}, {RunID: a}},
			[]string{
				"dependsOn[0].runId: required",
				`dependsOn[1].condition: "succeeded": want success, failure or complete`,
				`dependsOn[2].runId: "pr-01jx" is a pipeline run: a run may depend only on runs`,
				`dependsOn[3].runId: "a b": not a run id`,
				"dependsOn[4].runId: " + a + ": also dependsOn[1]",
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := SubmitRequest{TaskDefinition: []byte(`"f"`), DependsOn: tt.deps}.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if ErrorCode(err) != CodeInvalidArgument {
				t.Errorf("code %s, want %s", ErrorCode(err), CodeInvalidArgument)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v\nlacks %q", err, w)
				}
			}
			if got := len(unjoin(err)); got != len(tt.want) {
				t.Errorf("%d problems, want %d: %v", got, len(tt.want), err)
			}
		})
	}
}

func TestParseRunDependency(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want RunDependency
		err  string
	}{
		{"01jabc", RunDependency{RunID: "01jabc", Condition: CondSuccess}, ""},
		{"01jabc:success", RunDependency{RunID: "01jabc", Condition: CondSuccess}, ""},
		{"01jabc:failure", RunDependency{RunID: "01jabc", Condition: CondFailure}, ""},
		{"01jabc:complete", RunDependency{RunID: "01jabc", Condition: CondComplete}, ""},
		{"01jabc:done", RunDependency{}, `"01jabc:done": condition "done": want success, failure or complete`},
		{"01jabc:", RunDependency{}, `condition "": want success, failure or complete`},
		{"01jabc:failure:x", RunDependency{}, `condition "failure:x"`},
		{"", RunDependency{}, `"": want RUN[:success|failure|complete]`},
		{":failure", RunDependency{}, `":failure": want RUN[:success|failure|complete]`},
	} {
		got, err := ParseRunDependency(tt.in)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("ParseRunDependency(%q) = %v", tt.in, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseRunDependency(%q) = %v, want error %q", tt.in, err, tt.err)
		case got != tt.want:
			t.Errorf("ParseRunDependency(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseRunDependency(f *testing.F) {
	for _, s := range []string{"01jabc", "01jabc:failure", "01jabc:complete", "x:", ":", "", "a:b:c", "pr-01j:success"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseRunDependency(s)
		if err != nil {
			return
		}
		if d.RunID == "" || strings.Contains(d.RunID, ":") {
			t.Fatalf("ParseRunDependency(%q) = run id %q", s, d.RunID)
		}
		switch d.Condition {
		case CondSuccess, CondFailure, CondComplete:
		default:
			t.Fatalf("ParseRunDependency(%q) = condition %q", s, d.Condition)
		}
		// What the CLI parses reads back the same.
		back, err := ParseRunDependency(d.RunID + ":" + string(d.Condition))
		if err != nil || back != d {
			t.Fatalf("%q: %+v read back as %+v, %v", s, d, back, err)
		}
	})
}

// TestResolveDependencies: a waiting run is released once every
// dependency ended as its condition asks, fails at once when one ended
// otherwise (or is gone), and otherwise says what it waits for.
func TestResolveDependencies(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const a, b = "a1", "b1"
	for _, tt := range []struct {
		name     string
		deps     []RunDependency
		status   map[string]Status
		status2  Status // the run's status after
		released bool
		reason   string // statusReason, or stoppedReason once ended
	}{
		{"running", []RunDependency{{RunID: a}}, map[string]Status{a: StatusRunning}, StatusQueued, false,
			"waiting for run a1 (RUNNING) to succeed"},
		{"two waited for", []RunDependency{{RunID: a, Condition: CondFailure}, {RunID: b, Condition: CondComplete}},
			map[string]Status{a: StatusQueued, b: StatusStarting}, StatusQueued, false,
			"waiting for run a1 (QUEUED) to fail and run b1 (STARTING) to end"},
		{"one of two ended", []RunDependency{{RunID: a}, {RunID: b}}, map[string]Status{a: StatusSucceeded, b: StatusRunning},
			StatusQueued, false, "waiting for run b1 (RUNNING) to succeed"},
		{"succeeded", []RunDependency{{RunID: a}}, map[string]Status{a: StatusSucceeded}, StatusQueued, true, ""},
		{"failed, needed to fail", []RunDependency{{RunID: a, Condition: CondFailure}}, map[string]Status{a: StatusFailed}, StatusQueued, true, ""},
		{"canceled, needed to end", []RunDependency{{RunID: a, Condition: CondComplete}}, map[string]Status{a: StatusCanceled}, StatusQueued, true, ""},
		{"failed, needed to succeed", []RunDependency{{RunID: a}, {RunID: b}}, map[string]Status{a: StatusFailed, b: StatusRunning},
			StatusFailed, false, "run a1 FAILED; this run needed it to succeed"},
		{"canceled, needed to fail", []RunDependency{{RunID: a, Condition: CondFailure}}, map[string]Status{a: StatusCanceled},
			StatusFailed, false, "run a1 CANCELED; this run needed it to fail"},
		{"succeeded, needed to fail", []RunDependency{{RunID: a, Condition: CondFailure}}, map[string]Status{a: StatusSucceeded},
			StatusFailed, false, "run a1 SUCCEEDED; this run needed it to fail"},
		{"gone", []RunDependency{{RunID: a, Condition: CondComplete}}, map[string]Status{},
			StatusFailed, false, "run a1 no longer exists (deleted for the server's --run-retention), so how it ended is unknown; this run needed it to end"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(0)
			r.DependsOn = DependencyStates(tt.deps)
			if !r.Waiting() {
				t.Fatal("a new run with dependencies does not wait")
			}
			changed, released := r.ResolveDependencies(now, func(id string) (Status, bool) {
				s, ok := tt.status[id]
				return s, ok
			})
			if !changed || released != tt.released || r.Status != tt.status2 {
				t.Fatalf("changed %t, released %t, status %s; want true, %t, %s", changed, released, r.Status, tt.released, tt.status2)
			}
			reason := r.StatusReason
			if r.Status.Terminal() {
				reason = r.StoppedReason
				a := r.Current()
				if r.StopCode != StopFailedToStart || r.FinishedAt == nil || !r.FinishedAt.Equal(now) ||
					a.Status != StatusFailed || a.StoppedReason != reason || r.ExitCode != nil || r.StatusReason != "" {
					t.Errorf("failed run: %+v, attempt %+v", r, a)
				}
			}
			if reason != tt.reason {
				t.Errorf("reason %q, want %q", reason, tt.reason)
			}
			if r.Waiting() != (r.Status == StatusQueued && !released) {
				t.Errorf("Waiting() = %t for status %s, released %t", r.Waiting(), r.Status, released)
			}
			// Resolving again changes nothing once resolved, and nothing
			// while the statuses stay.
			if c, rel := r.ResolveDependencies(now, func(id string) (Status, bool) {
				s, ok := tt.status[id]
				return s, ok
			}); c || rel {
				t.Errorf("resolved again: changed %t, released %t", c, rel)
			}
		})
	}
}

// TestRunWithoutDependenciesDoesNotWait: runs as before dependsOn, and a
// run that was released, wait for nothing.
func TestRunWithoutDependenciesDoesNotWait(t *testing.T) {
	r := newRun(0)
	if r.Waiting() || r.WaitsFor() != nil {
		t.Fatal("a run without dependencies waits")
	}
	if c, rel := r.ResolveDependencies(time.Now(), func(string) (Status, bool) { return "", false }); c || rel {
		t.Fatal("a run without dependencies was resolved")
	}
	r.DependsOn = []DependencyState{{RunID: "a", Condition: CondSuccess, Status: StatusSucceeded}}
	if r.Waiting() {
		t.Fatal("a released run waits")
	}
	r.DependsOn[0].Status = ""
	if !r.Cancel(time.Now(), "stopped") || r.Waiting() {
		t.Fatal("a canceled run waits")
	}
}
