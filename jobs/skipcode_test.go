package jobs

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSkipOnExitCodeParses(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want []int
	}{
		{"skipOnExitCode: [99]", []int{99}},
		{"skipOnExitCode: 99", []int{99}}, // one code, as Airflow's skip_on_exit_code=99
		{"skipOnExitCode: [99, 100, 1, 255]", []int{99, 100, 1, 255}},
		{"skipOnExitCode: []", []int{}},
		{"skipOnExitCode: 99.0", []int{99}},
		{"", nil},
	} {
		p, err := ParsePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t, " + tc.yaml + "}]\n"))
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		if got := p.Stages[0].SkipOnExitCode; !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("%q: %v, want %v", tc.yaml, got, tc.want)
		}
	}
	// JSON writes it as a list, which reads back the same.
	p, err := ParsePipeline([]byte(`{"name":"p","stages":[{"name":"a","taskDefinition":"t","skipOnExitCode":99}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p.Stages[0])
	if !strings.Contains(string(b), `"skipOnExitCode":[99]`) {
		t.Errorf("stage JSON %s, want skipOnExitCode [99]", b)
	}
}

// Every bad code is named with its stage and index, with the stage's
// other problems: all at once.
func TestSkipOnExitCodeValidation(t *testing.T) {
	_, err := ParsePipeline([]byte(`name: p
stages:
  - {name: extract, taskDefinition: t}
  - {name: transform, taskDefinition: t, dependsOn: [extract], skipOnExitCode: [0, 99, 256, -1, 99], arraySize: -1}
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"stages[1](transform).skipOnExitCode[0]: 0: exit code 0 is success, not a skip: want 1 to 255",
		"stages[1](transform).skipOnExitCode[2]: 256: want an exit code from 1 to 255",
		"stages[1](transform).skipOnExitCode[3]: -1: want an exit code from 1 to 255",
		"stages[1](transform).skipOnExitCode[4]: 99 is listed twice",
		"stages[1](transform).arraySize",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nwant %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "skipOnExitCode[1]") {
		t.Errorf("%v: 99 is a good code", err)
	}
	// Values that are no exit code stop the decoding, saying what is wanted.
	for _, v := range []string{`"99"`, "99.5", "[a]", "{code: 99}", "true", "99999999999999999999999"} {
		_, err := ParsePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t, skipOnExitCode: " + v + "}]\n"))
		if err == nil || !strings.Contains(err.Error(), "skipOnExitCode") {
			t.Errorf("skipOnExitCode: %s: %v, want it refused naming skipOnExitCode", v, err)
		}
	}
}

func TestRunSkipCode(t *testing.T) {
	code := func(n int) *int { return &n }
	for _, tc := range []struct {
		name string
		run  Run
		want bool
	}{
		{"exited 99", Run{Status: StatusFailed, StopCode: StopEssentialExited, ExitCode: code(99)}, true},
		{"exited 1", Run{Status: StatusFailed, StopCode: StopEssentialExited, ExitCode: code(1)}, false},
		{"timed out", Run{Status: StatusFailed, StopCode: StopTimeout, ExitCode: code(99)}, false},
		{"stopped", Run{Status: StatusCanceled, StopCode: StopUserInitiated, ExitCode: code(99)}, false},
		{"never started", Run{Status: StatusFailed, StopCode: StopFailedToStart}, false},
		{"worker shut down", Run{Status: StatusFailed, StopCode: StopTerminationNotice, ExitCode: code(99)}, false},
		{"succeeded", Run{Status: StatusSucceeded, ExitCode: code(0)}, false},
	} {
		if _, got := tc.run.SkipCode([]int{99, 100}); got != tc.want {
			t.Errorf("%s: skip %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := SkipReason(1, 1, []int{99}); got != "exited 99 (skipOnExitCode): skipped" {
		t.Errorf("reason %q", got)
	}
	if got := SkipReason(3, 3, []int{100, 99, 99}); got != "3 of 3 runs exited 99, 100 (skipOnExitCode): skipped" {
		t.Errorf("reason %q", got)
	}
}

// An attempt that exits with a skip code is not retried, whatever the
// retry strategy says (an explicit RETRY rule for the code included); the
// run's reason says why. Other exits are retried as before.
func TestSkipCodeIsNotRetried(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	newRun := func(exit int, skip []int) *Run {
		rs := &RetryStrategy{Attempts: 3, EvaluateOnExit: []EvaluateOnExit{{OnExitCode: "9?", Action: ActionRetry}}}
		return &Run{RunID: "r", Status: StatusFailed, StopCode: StopEssentialExited, ExitCode: &exit,
			StoppedReason: "Essential container in task exited",
			Spec:          RunSpec{RetryStrategy: rs, Stage: &StageContext{PipelineRunID: "pr-1", Stage: "extract", SkipOnExitCode: skip}},
			Attempts:      []Attempt{{Attempt: 1, Status: StatusFailed, ExitCode: &exit, StopCode: StopEssentialExited}}}
	}
	r := newRun(99, []int{99})
	if r.Retry(now) {
		t.Fatal("retried an exit in skipOnExitCode")
	}
	if want := "Essential container in task exited; not retried: exit code 99 is in skipOnExitCode of stage extract"; r.StoppedReason != want {
		t.Errorf("reason %q, want %q", r.StoppedReason, want)
	}
	for _, r := range []*Run{newRun(98, []int{99}), newRun(99, nil)} {
		if !r.Retry(now) {
			t.Errorf("exit %d with skipOnExitCode %v not retried", *r.ExitCode, r.Spec.Stage.SkipOnExitCode)
		}
	}
	// Through the worker's event, as the server applies it.
	r = newRun(0, []int{99})
	r.Status, r.ExitCode, r.StopCode, r.StoppedReason = StatusRunning, nil, "", ""
	r.Attempts[0] = Attempt{Attempt: 1, Status: StatusRunning, Seq: 1}
	exit := 99
	r.Apply(Event{RunID: "r", Attempt: 1, Seq: 2, Status: StatusFailed, Time: now, ExitCode: &exit,
		StopCode: StopEssentialExited, StoppedReason: "Essential container in task exited"})
	if r.Status != StatusFailed || len(r.Attempts) != 1 || r.FinishedAt == nil {
		t.Fatalf("run %s with %d attempts, want FAILED after one", r.Status, len(r.Attempts))
	}
}

// TestSkipOnExitCodeShapeNamed: a skipOnExitCode that is no code nor list
// is named by its stage's path and index, each one, not as a bare
// "pipeline: skipOnExitCode".
func TestSkipOnExitCodeShapeNamed(t *testing.T) {
	const file = `
name: p
stages:
  - {name: a, image: busybox, skipOnExitCode: [99, "x", [1]]}
  - {name: b, image: busybox, skipOnExitCode: "99", timeoutSecond: 5}
`
	_, err := DecodePipeline([]byte(file))
	if err == nil {
		t.Fatal("decoded")
	}
	for _, want := range []string{`stages[1](b).timeoutSecond: unknown field; did you mean "timeoutSeconds"?`, `stages[0](a).skipOnExitCode[1]: "x": want`, `stages[0](a).skipOnExitCode[2]: [1]: want`, `stages[1](b).skipOnExitCode: "99": want`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nwant it to contain %q", err, want)
		}
	}
}
