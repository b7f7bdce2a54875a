package jobs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func intp(i int) *int { return &i }

func newRun(attempts int) *Run {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	r := &Run{RunID: "r1", Status: StatusQueued, CreatedAt: t0,
		Attempts: []Attempt{{Attempt: 1, Status: StatusQueued, CreatedAt: t0}}}
	if attempts > 0 {
		r.Spec.RetryStrategy = &RetryStrategy{Attempts: attempts}
	}
	return r
}

func ev(attempt, seq int, st Status) Event {
	return Event{RunID: "r1", Attempt: attempt, Seq: seq, Status: st, Worker: "w1",
		Time: time.Date(2026, 11, 25, 8, 0, seq, 0, time.UTC)}
}

func TestApplyLifecycle(t *testing.T) {
	r := newRun(0)
	steps := []struct {
		ev      Event
		changed bool
		status  Status
	}{
		{ev(1, 1, StatusStarting), true, StatusStarting},
		{ev(1, 2, StatusRunning), true, StatusRunning},
		{ev(1, 2, StatusRunning), false, StatusRunning},  // replay
		{ev(1, 1, StatusStarting), false, StatusRunning}, // older
		{ev(2, 1, StatusStarting), false, StatusRunning}, // no such attempt
		{func() Event { e := ev(1, 3, StatusSucceeded); e.ExitCode = intp(0); return e }(), true, StatusSucceeded},
		{ev(1, 4, StatusFailed), false, StatusSucceeded}, // after the end
	}
	for i, s := range steps {
		if got := r.Apply(s.ev); got != s.changed {
			t.Fatalf("step %d: Apply = %v, want %v", i, got, s.changed)
		}
		if r.Status != s.status {
			t.Fatalf("step %d: status %s, want %s", i, r.Status, s.status)
		}
	}
	if r.StartedAt == nil || r.FinishedAt == nil || r.Worker != "w1" || r.ExitCode == nil || *r.ExitCode != 0 {
		t.Fatalf("run after lifecycle: %+v", r)
	}
}

func TestApplyRetriesFailedAttempt(t *testing.T) {
	r := newRun(2)
	r.Apply(ev(1, 1, StatusRunning))
	fail := ev(1, 2, StatusFailed)
	fail.ExitCode, fail.StopCode = intp(1), StopEssentialExited
	if !r.Apply(fail) {
		t.Fatal("failure not applied")
	}
	if r.Status != StatusQueued || len(r.Attempts) != 2 || r.Attempts[1].Status != StatusQueued || r.FinishedAt != nil {
		t.Fatalf("after first failure: status %s attempts %+v", r.Status, r.Attempts)
	}
	r.Apply(ev(2, 1, StatusRunning))
	fail2 := ev(2, 2, StatusFailed)
	fail2.ExitCode = intp(5)
	r.Apply(fail2)
	if r.Status != StatusFailed || len(r.Attempts) != 2 || *r.ExitCode != 5 || r.FinishedAt == nil {
		t.Fatalf("after last failure: status %s exit %v attempts %d", r.Status, r.ExitCode, len(r.Attempts))
	}
	// A late event of the first attempt changes only that attempt's record.
	if r.Apply(ev(1, 3, StatusSucceeded)) {
		t.Fatal("an event after the attempt ended changed the run")
	}
}

func TestUserStopIsNotRetried(t *testing.T) {
	r := newRun(3)
	e := ev(1, 1, StatusFailed)
	e.StopCode = StopUserInitiated
	r.Apply(e)
	if r.Status != StatusFailed || len(r.Attempts) != 1 {
		t.Fatalf("status %s attempts %d", r.Status, len(r.Attempts))
	}
}

func TestCancel(t *testing.T) {
	now := time.Now()
	r := newRun(0)
	if !r.Cancel(now, "bye") || r.Status != StatusCanceled || r.StopCode != StopUserInitiated || r.Attempts[0].Status != StatusCanceled {
		t.Fatalf("cancel queued: %+v", r)
	}
	// A worker that took the job anyway reports: the attempt ended when the
	// run was canceled, so nothing changes.
	if r.Apply(ev(1, 1, StatusRunning)) || r.Status != StatusCanceled {
		t.Fatalf("status %s after a late worker event", r.Status)
	}
	running := newRun(0)
	running.Apply(ev(1, 1, StatusRunning))
	if running.Cancel(now, "bye") {
		t.Fatal("Cancel of a running run must be left to its worker")
	}
}

func TestSubmitRequestTaskRef(t *testing.T) {
	tests := []struct {
		name, json string
		ref        string
		inline     bool
		err        string
	}{
		{"family", `{"taskDefinition":"etl"}`, "etl", false, ""},
		{"family and revision", `{"taskDefinition":"etl:3"}`, "etl:3", false, ""},
		{"bad revision", `{"taskDefinition":"etl:x"}`, "", false, "revision must be a positive number"},
		{"missing", `{}`, "", false, "taskDefinition: required"},
		{"inline", `{"taskDefinition":{"family":"f","containerDefinitions":[{"name":"main","image":"busybox"}]}}`, "", true, ""},
		{"inline without image", `{"taskDefinition":{"family":"f","containerDefinitions":[{"name":"main"}]}}`, "", false,
			"taskDefinition.containerDefinitions[0].image: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req SubmitRequest
			if err := json.Unmarshal([]byte(tt.json), &req); err != nil {
				t.Fatal(err)
			}
			ref, inline, err := req.TaskRef()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if ErrorCode(err) != CodeInvalidArgument {
					t.Fatalf("code %s, want invalid_argument", ErrorCode(err))
				}
				return
			}
			if err != nil || ref != tt.ref || (inline != nil) != tt.inline {
				t.Fatalf("got %q %v %v", ref, inline, err)
			}
		})
	}
}

func TestSubmitRequestValidateCollectsEveryProblem(t *testing.T) {
	req := SubmitRequest{Cluster: "bad cluster", TimeoutSeconds: -1, RetryStrategy: &RetryStrategy{Attempts: 11}}
	err := req.Validate()
	for _, want := range []string{"cluster: \"bad cluster\"", "timeoutSeconds: must not be negative", "retryStrategy.attempts: 11: must be between 1 and 10"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// TestDurationsAreBounded: timeoutSeconds and activeDeadlineSeconds above
// MaxDurationSeconds are refused naming the field (10 digits overflowed
// time.Duration and timed the run out at once), in a stage too.
func TestDurationsAreBounded(t *testing.T) {
	for _, tt := range []struct {
		name string
		req  SubmitRequest
		want string // "" for valid
	}{
		{"timeout at the bound", SubmitRequest{TimeoutSeconds: MaxDurationSeconds}, ""},
		{"deadline at the bound", SubmitRequest{ActiveDeadlineSeconds: MaxDurationSeconds}, ""},
		{"timeout beyond", SubmitRequest{TimeoutSeconds: MaxDurationSeconds + 1}, "timeoutSeconds: 1576800001: must be at most 1576800000 (50 years)"},
		{"deadline of 10 digits", SubmitRequest{ActiveDeadlineSeconds: 9999999999}, "activeDeadlineSeconds: 9999999999: must be at most 1576800000 (50 years)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			if tt.want == "" && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	p, err := DecodePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: f, timeoutSeconds: 9999999999}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "stages[0](a).timeoutSeconds: 9999999999: must be at most") {
		t.Fatalf("stage: Validate() = %v", err)
	}
	// The schedule's startingDeadlineSeconds and a container's startTimeout
	// become time.Duration too.
	sch := Schedule{Cron: "0 * * * *", StartingDeadlineSeconds: 9999999999}
	if err := sch.Validate(); err == nil || !strings.Contains(err.Error(), "startingDeadlineSeconds: 9999999999: must be at most") {
		t.Fatalf("schedule: Validate() = %v", err)
	}
	td := TaskDefinition{Family: "f", ContainerDefinitions: []ContainerDefinition{{Name: "m", Image: "i", StartTimeout: 9999999999}}}
	if err := td.Validate(); err == nil || !strings.Contains(err.Error(), "containerDefinitions[0].startTimeout: 9999999999: must be at most") {
		t.Fatalf("task definition: Validate() = %v", err)
	}
}

func TestWithOverrides(t *testing.T) {
	td := TaskDefinition{Family: "f", ContainerDefinitions: []ContainerDefinition{{Name: "main", Image: "i",
		Command: []string{"a"}, Environment: []KeyValue{{"A", "1"}, {"B", "2"}}}}}
	out, err := td.WithOverrides(&Overrides{ContainerOverrides: []ContainerOverride{{Name: "main",
		Command: []string{"b"}, Environment: []KeyValue{{"B", "3"}, {"C", "4"}}, Memory: intp(64)}}})
	if err != nil {
		t.Fatal(err)
	}
	c := out.ContainerDefinitions[0]
	if c.Command[0] != "b" || c.Memory != 64 || len(c.Environment) != 3 || c.Environment[1].Value != "3" {
		t.Fatalf("overridden: %+v", c)
	}
	if td.ContainerDefinitions[0].Command[0] != "a" || td.ContainerDefinitions[0].Environment[1].Value != "2" {
		t.Fatal("WithOverrides changed its receiver")
	}
	_, err = td.WithOverrides(&Overrides{ContainerOverrides: []ContainerOverride{{Name: "other"}}})
	if err == nil || !strings.Contains(err.Error(), `overrides.containerOverrides[0].name: no container "other"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestWithOverridesKeepsStoredDefinitionsRunnable: a definition stored
// before a rule was added (here task cpu 64, below the 128 units refused at
// register since) still runs with overrides, as every pipeline stage's run
// has; a problem the overrides bring still refuses the run.
func TestWithOverridesKeepsStoredDefinitionsRunnable(t *testing.T) {
	td := TaskDefinition{Family: "f", CPU: "64", ContainerDefinitions: []ContainerDefinition{{Name: "main", Image: "i"}}}
	if td.Validate() == nil {
		t.Fatal("task cpu 64 is valid: pick another rule for this test")
	}
	env := &Overrides{ContainerOverrides: []ContainerOverride{{Environment: []KeyValue{{"GANTRY_STAGE", "load"}}}}}
	if _, err := td.WithOverrides(env); err != nil {
		t.Fatalf("stored definition with an environment override: %v", err)
	}
	_, err := td.WithOverrides(&Overrides{ContainerOverrides: []ContainerOverride{{Name: "main", Memory: intp(3)}}})
	if err == nil || !strings.Contains(err.Error(), "memory: 3 MiB is below") || strings.Contains(err.Error(), "cpu") {
		t.Fatalf("override bringing a bad memory: %v, want that problem alone", err)
	}
}

func FuzzSubmitRequest(f *testing.F) {
	f.Add([]byte(`{"taskDefinition":"etl:3","cluster":"c","retryStrategy":{"attempts":2}}`))
	f.Add([]byte(`{"taskDefinition":{"family":"f","containerDefinitions":[{"name":"m","image":"i","memory":64}]}}`))
	f.Add([]byte(`{"taskDefinition":null}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","priority":"low"}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","priority":"urgent"}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","tags":[{"key":"team","value":"data"},{"key":"cc","value":""}]}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","tags":{"team":"data","gantry:x":"y"}}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","tags":[{"key":"a"},{"key":"a","value":"b=c"}]}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","tags":"team=data"}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","propagateTags":"TASK_DEFINITION","tags":{"a":"b"}}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","propagateTags":"SERVICE"}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","dependsOn":[{"runId":"01jabc"},{"runId":"01jdef","condition":"failure"}]}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","dependsOn":[{"runId":"pr-01jabc","condition":"complete"},{"runId":""},{"condition":"done"}]}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","dependsOn":[{"runId":"a"},{"runId":"a"}]}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","pool":"warehouse"}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","pool":"ware house","dependsOn":[{"runId":"a"}]}`))
	f.Add([]byte(`{"taskDefinition":"etl:3","pool":7}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req SubmitRequest
		if json.Unmarshal(data, &req) != nil {
			return
		}
		ref, inline, err := req.TaskRef()
		if err == nil && (ref == "") == (inline == nil) {
			t.Fatalf("TaskRef gave ref %q and inline %v", ref, inline)
		}
		if err == nil && inline != nil {
			if verr := inline.Validate(); verr != nil {
				t.Fatalf("accepted an invalid task definition: %v", verr)
			}
		}
		err = req.Validate()
		if err == nil && !req.Priority.Valid() {
			t.Fatalf("accepted priority %q", req.Priority)
		}
		if err == nil && req.Pool != "" && CheckPoolName("pool", req.Pool) != nil {
			t.Fatalf("accepted pool %q", req.Pool)
		}
		if err == nil {
			// Accepted tags are as many in the run's map, and each
			// passes the command line's check as K=V.
			m := req.Tags.Map()
			if len(m) != len(req.Tags) || len(m) > MaxTags {
				t.Fatalf("accepted %d tags, %d keys", len(req.Tags), len(m))
			}
			for k, v := range m {
				if gk, gv, _, err := ParseTag(k+"="+v, false); err != nil || gk != k || gv != v {
					t.Fatalf("accepted tag %q=%q, which ParseTag reads as %q=%q, %v", k, v, gk, gv, err)
				}
			}
		}
		if err != nil {
			return
		}
		if len(req.DependsOn) > MaxRunDependencies {
			t.Fatalf("accepted %d dependencies", len(req.DependsOn))
		}
		seen := map[string]bool{}
		for _, d := range req.DependsOn {
			if d.RunID == "" || seen[d.RunID] || IsPipelineRunID(d.RunID) {
				t.Fatalf("accepted dependency %+v", d)
			}
			seen[d.RunID] = true
			if _, err := ParseRunDependency(d.RunID + ":" + string(DependencyStates([]RunDependency{d})[0].Condition)); err != nil {
				t.Fatalf("accepted dependency %+v, which the CLI cannot say: %v", d, err)
			}
		}
	})
}

// TestGiveUpAfterTheServerQueuedTheRedelivery: the server found attempt 1's
// worker lost first and queued its job's redelivery as attempt 2; the
// worker that took the job gives up (too many lost workers), naming
// attempt 1. The run fails with it instead of waiting for a job nobody runs.
func TestGiveUpAfterTheServerQueuedTheRedelivery(t *testing.T) {
	r := newRun(0)
	r.Apply(ev(1, 1, StatusRunning))
	lost := ev(1, 1<<30, StatusFailed)
	lost.StopCode, lost.Redelivered, lost.Source = StopWorkerLost, true, SourceWorker
	if !r.Apply(lost) || r.Status != StatusQueued || len(r.Attempts) != 2 || !r.Attempts[1].Redelivery {
		t.Fatalf("after the loss: %s, %+v", r.Status, r.Attempts)
	}
	// As the worker sends it: about the lost attempt, naming its worker.
	gaveUp := ev(1, 1<<30+1, StatusFailed)
	gaveUp.Worker, gaveUp.Source = "w1", SourceWorker
	gaveUp.StopCode, gaveUp.StoppedReason = StopWorkerLost, "worker w1 was lost with this run; giving up after 6 lost workers"
	if !r.Apply(gaveUp) || r.Status != StatusFailed || r.Attempts[1].Status != StatusFailed || r.StoppedReason != gaveUp.StoppedReason {
		t.Fatalf("after the give-up: %s %q, %+v", r.Status, r.StoppedReason, r.Attempts)
	}
	if r.Attempts[1].Worker != "" {
		t.Fatalf("the redelivery, which no worker ran, names worker %q", r.Attempts[1].Worker)
	}
	// Any other late event of an ended attempt still changes nothing.
	r2 := newRun(0)
	r2.Apply(lost)
	late := ev(1, 1<<30+1, StatusFailed)
	if r2.Apply(late) || r2.Status != StatusQueued {
		t.Fatalf("a late event of the lost attempt: %s", r2.Status)
	}
}

// TestShutdownDoesNotCountAgainstAttempts: an attempt its worker stopped
// as it shut down does not use up retryStrategy.attempts. Handed back to
// the queue (Redelivered), its job runs as the next attempt, which waits
// QUEUED for it as for a lost worker's; reported by a worker that acked its
// job instead (an older one), the run is retried.
func TestShutdownDoesNotCountAgainstAttempts(t *testing.T) {
	for _, handedBack := range []bool{true, false} {
		r := newRun(0) // one attempt
		r.Apply(ev(1, 1, StatusRunning))
		stopped := ev(1, 2, StatusFailed)
		stopped.StopCode, stopped.Redelivered, stopped.Source = StopTerminationNotice, handedBack, SourceWorker
		stopped.StoppedReason = "worker w1 shut down before the task ended"
		if !r.Apply(stopped) || r.Status != StatusQueued || len(r.Attempts) != 2 || r.Attempts[1].Redelivery != handedBack ||
			r.FinishedAt != nil {
			t.Fatalf("handed back %v: %s, %+v", handedBack, r.Status, r.Attempts)
		}
		if r.Tries() != 1 {
			t.Fatalf("handed back %v: %d tries, want 1 (attempt 2)", handedBack, r.Tries())
		}
		if handedBack && !strings.Contains(r.StatusReason, "handed back by worker w1") {
			t.Fatalf("status reason %q", r.StatusReason)
		}
		r.Apply(ev(2, 1, StatusRunning))
		ok := ev(2, 2, StatusSucceeded)
		ok.ExitCode = intp(0)
		if !r.Apply(ok) || r.Status != StatusSucceeded || r.Tries() != 1 {
			t.Fatalf("handed back %v: after attempt 2: %s, %d tries", handedBack, r.Status, r.Tries())
		}
	}
}

// TestNoRetryPastTheDeadlineSaysSo: a failed attempt whose retry would
// start after activeDeadlineSeconds ends the run, and its reason says why
// the attempts left were not tried.
func TestNoRetryPastTheDeadlineSaysSo(t *testing.T) {
	r := newRun(5)
	d := r.CreatedAt.Add(3 * time.Second)
	r.Spec.ActiveDeadlineSeconds, r.Spec.Deadline = 3, &d
	failed := ev(1, 2, StatusFailed) // at 08:00:02, the retry's backoff takes it past 08:00:03
	failed.ExitCode, failed.StopCode, failed.StoppedReason = intp(1), StopEssentialExited, "Essential container in task exited"
	r.Spec.RetryStrategy.Backoff = &Backoff{InitialSeconds: 2}
	r.Apply(failed)
	if r.Status != StatusFailed || len(r.Attempts) != 1 ||
		r.StoppedReason != "Essential container in task exited; not retried: activeDeadlineSeconds=3 passes before attempt 2 could start" {
		t.Fatalf("%s, %d attempts, %q", r.Status, len(r.Attempts), r.StoppedReason)
	}
}

// DESIGN.md's run JSON has "at least" these keys, empty or not: a reader
// checking for an attempt's stoppedReason or a container's reason must
// find them on a run that succeeded too.
func TestRunJSONHasTheContractsKeys(t *testing.T) {
	zero := 0
	r := Run{RunID: "r", Status: StatusSucceeded, ExitCode: &zero,
		Attempts:   []Attempt{{Attempt: 1, Worker: "w", Status: StatusSucceeded, ExitCode: &zero}},
		Containers: []ContainerResult{{Name: "main", ExitCode: &zero}}}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Attempts   []map[string]any `json:"attempts"`
		Containers []map[string]any `json:"containers"`
	}
	var top map[string]any
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	check := func(what string, m map[string]any, keys ...string) {
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s JSON lacks %q: %s", what, k, data)
			}
		}
	}
	check("run", top, "runId", "status", "exitCode", "stopCode", "stoppedReason", "taskDefinition", "cluster", "worker",
		"createdAt", "startedAt", "finishedAt", "attempts", "containers")
	check("attempt", doc.Attempts[0], "attempt", "worker", "status", "exitCode", "stoppedReason", "createdAt", "startedAt", "finishedAt")
	check("container", doc.Containers[0], "name", "exitCode", "reason")
}

// A run whose attempt ended before any container was made (an image that
// could not be pulled) still has its containers, empty, in its JSON.
func TestRunEndedWithoutContainersHasEmptyContainers(t *testing.T) {
	r := Run{RunID: "r", Status: StatusQueued, Containers: []ContainerResult{},
		Attempts: []Attempt{{Attempt: 1, Status: StatusQueued}}}
	r.Apply(Event{RunID: "r", Attempt: 1, Seq: 1, Status: StatusFailed, StopCode: StopFailedToStart, StoppedReason: "image missing"})
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"containers":[]`) {
		t.Fatalf("containers not [] in %s", data)
	}
}

// TestSubmitTaskDefinitionOfTheWrongKind: a submission whose
// taskDefinition is neither a reference nor an object (a number, a list,
// JSON cut short) is refused as the request's fault, naming the field and
// what it holds; it was an internal error before.
func TestSubmitTaskDefinitionOfTheWrongKind(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{
		{`1`, "taskDefinition: want a JSON object, got the number 1"},
		{`[{"family": "etl"}]`, "taskDefinition: want a JSON object, got"},
		{`true`, "taskDefinition: want a JSON object, got"},
	} {
		_, _, err := SubmitRequest{TaskDefinition: json.RawMessage(tt.raw)}.TaskRef()
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("taskDefinition %s: %v, want %q", tt.raw, err, tt.want)
		}
		if code := ErrorCode(err); code != CodeInvalidArgument {
			t.Errorf("taskDefinition %s: code %s, want %s", tt.raw, code, CodeInvalidArgument)
		}
	}
}

func TestParseStatusSuggests(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"FAILD", `status "FAILD": want one of QUEUED, STARTING, RUNNING, SUCCEEDED, FAILED, CANCELED; did you mean "FAILED"?`},
		{"cancelled", `status "cancelled": want one of QUEUED, STARTING, RUNNING, SUCCEEDED, FAILED, CANCELED; did you mean "CANCELED"?`},
		{"Succeded", `; did you mean "SUCCEEDED"?`},
		{"DONE", `status "DONE": want one of QUEUED, STARTING, RUNNING, SUCCEEDED, FAILED, CANCELED`},
	} {
		_, err := ParseStatus(c.in)
		if err == nil || !strings.HasSuffix(err.Error(), c.want) {
			t.Errorf("ParseStatus(%q): %v, want it to end %q", c.in, err, c.want)
		}
		if c.in == "DONE" && strings.Contains(err.Error(), "did you mean") {
			t.Errorf("ParseStatus(%q): %v, want no suggestion", c.in, err)
		}
	}
}
